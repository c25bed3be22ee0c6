import Foundation
import Testing

/// `sluice run --log-format json`: every line on standard error is one JSON object — the host's, the scheduler's and
/// the plugins' messages and the batches — with an ISO-8601 timestamp, the level, the pipeline, the component and,
/// for a plugin's message, its instance and plugin. The text format puts the timestamp before the old lines.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct LogFormatTests {
    static let json = ["--progress", "none", "--log-format", "json", "--log-level", "debug"]

    /// Every line parsed; fails the test on the first that is not a JSON object with the common fields.
    static func records(_ stderr: String) throws -> [[String: Any]] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return try stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { line in
            let object = try #require(
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any], "not a JSON object: \(line)"
            )
            let stamp = try #require(object["timestamp"] as? String, "\(line)")
            #expect(formatter.date(from: stamp) != nil, "timestamp \(stamp)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(object["level"] as? String), "\(line)")
            #expect(object["pipeline"] as? String == "probe", "\(line)")
            #expect(["host", "scheduler", "plugin"].contains(object["component"] as? String), "\(line)")
            #expect(object["message"] is String, "\(line)")
            return object
        }
    }

    @Test func everyLineIsAJSONObject() throws {
        let pipeline = try ProbePipeline(lines: 3, maxRecords: 1)
        defer { pipeline.remove() }
        let first = try pipeline.run(["--batches", "2"] + Self.json)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.hasSuffix("\n"))
        let records = try Self.records(first.stderr)
        let call = try #require(records.first { ($0["message"] as? String)?.hasPrefix("call 1 began") == true }, "\(first.stderr)")
        #expect(call["component"] as? String == "plugin")
        #expect(call["instance"] as? String == "probe")
        #expect(call["plugin"] as? String == "c-probe")
        #expect(call["level"] as? String == "info")
        let batches = records.filter { ($0["message"] as? String)?.contains("completed") == true }
        #expect(batches.map { $0["batch"] as? Int } == [0, 1], "\(first.stderr)")
        #expect(batches.map { $0["records"] as? Int } == [1, 1], "\(first.stderr)")
        #expect(records.contains { $0["level"] as? String == "debug" && $0["message"] as? String == "batch 0 started" })
        #expect((records.last?["message"] as? String)?.hasPrefix("probe: 2 batches, 2 records in ") == true, "\(first.stderr)")
        #expect((records.last?["message"] as? String)?.hasSuffix("stopped: batch limit reached") == true, "\(first.stderr)")

        // A restart: the scheduler's messages are records too.
        let second = try pipeline.run(["--batches", "3"] + Self.json)
        #expect(second.status == 0, "\(second.stderr)")
        let resumed = try Self.records(second.stderr).first { ($0["message"] as? String)?.hasPrefix("resuming after batch 1") == true }
        #expect(resumed?["component"] as? String == "scheduler", "\(second.stderr)")
    }

    @Test func aFailureIsAnErrorRecord() throws {
        let pipeline = try ProbePipeline(lines: 3, probe: "{fail: \"poisoned \\\"record\\\"\"}")
        defer { pipeline.remove() }
        let result = try pipeline.run(["--batches", "2"] + Self.json)
        #expect(result.status == 1, "\(result.stderr)")
        let records = try Self.records(result.stderr)
        let error = try #require(records.first { $0["level"] as? String == "error" }, "\(result.stderr)")
        #expect(error["message"] as? String == "batch 0 failed: probe: poisoned \"record\"")
        #expect(error["component"] as? String == "host")
    }

    @Test func textLinesCarryTimestampLevelAndInstance() throws {
        let pipeline = try ProbePipeline(lines: 2, maxRecords: 1)
        defer { pipeline.remove() }
        let result = try pipeline.run(["--batches", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let call = result.stderr.split(separator: "\n").first { $0.contains("call 1 began") }
        #expect(call?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[info\] probe: call 1 began, 1 at once/) != nil, "\(result.stderr)")
        // The progress line and the summary keep their form.
        #expect(result.stderr.contains("\nbatch 0 at ") || result.stderr.hasPrefix("batch 0 at "), "\(result.stderr)")
        #expect(result.stderr.contains("\nsluice: probe: 1 batches, 1 records in "), "\(result.stderr)")
    }
}
