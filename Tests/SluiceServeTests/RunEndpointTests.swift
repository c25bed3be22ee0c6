import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `sluice run --http`: one pipeline's /metrics (read with Prometheus' own parser), /health and /ready, for as long as
/// the run lasts.
@Suite(.timeLimit(.minutes(2)))
struct RunEndpointTests {
    @Test func aRunServesItsMetricsHealthAndReadinessUntilItEnds() async throws {
        let work = try temporaryDirectory("sluice-run-http")
        defer { try? FileManager.default.removeItem(at: work) }
        let errors = work.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: errors.path, contents: nil)
        let run = Process()
        run.executableURL = ServeProcess.sluice
        run.arguments = [
            "run", ServeProcess.repository.appendingPathComponent("examples/wordcount/pipeline.yaml").path,
            "--http", "127.0.0.1:0", "--batches", "8", "--progress", "none",
        ]
        run.standardOutput = FileHandle.nullDevice
        run.standardError = try FileHandle(forWritingTo: errors)
        try run.run()
        defer { if run.isRunning { run.terminate() } }

        let started = Date()
        var base: String?
        while base == nil && Date().timeIntervalSince(started) < 30 {
            let text = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) { base = String(text[range]) }
            try await Task.sleep(for: .milliseconds(20))
        }
        let said = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
        let url = try #require(base, "the run never said where it serves: \(said)")

        func get(_ path: String) async throws -> (Int, String) {
            let (data, response) = try await URLSession.shared.data(from: URL(string: url + path)!)
            return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
        }
        #expect(try await get("/health").0 == 200)
        // The bundled text is 35 lines, 12 per batch: once read, the metrics say so.
        var samples: [String: Double] = [:]
        while Date().timeIntervalSince(started) < 60 {
            samples = try RequestTests.samples(try await get("/metrics").1)
            if samples[#"sluice_input_records_total{pipeline="wordcount"}"#] == 35 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(samples[#"sluice_input_records_total{pipeline="wordcount"}"#] == 35)
        #expect((samples[#"sluice_batches_completed_total{pipeline="wordcount"}"#] ?? 0) >= 3)
        #expect(samples[#"sluice_source_partition_position{partition="0",pipeline="wordcount",source="lines"}"#] == 35)
        #expect(samples[#"sluice_stage_records_in_total{pipeline="wordcount",stage="words"}"#] == 35)
        let (status, body) = try await get("/ready")
        #expect(status == 200 && body.contains("ready"), "a batch has completed: \(body)")

        // The endpoint ends with the run.
        while run.isRunning && Date().timeIntervalSince(started) < 60 { try await Task.sleep(for: .milliseconds(50)) }
        let log = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
        #expect(!run.isRunning && run.terminationStatus == 0, "\(log)")
        await #expect(throws: (any Error).self) { _ = try await get("/health") }
    }
}
