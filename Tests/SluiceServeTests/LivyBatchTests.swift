import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Livy's batch API over a real socket, each pipeline a real `sluice run` child: the lifecycle of the README's word
/// count (submit, running, log, statistics, DELETE, killed), a bounded run's success, a failing one's death.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct LivyBatchTests {
    static var wordCount: String { ServeProcess.repository.appendingPathComponent("examples/wordcount/pipeline.yaml").path }

    /// A line the console sink prints for a count: "(word,count)".
    static func isCount(_ line: String) -> Bool {
        line.hasPrefix("(") && line.hasSuffix(")") && line.lastIndex(of: ",").map { Int(line[line.index(after: $0)...].dropLast()) != nil } == true
    }

    @Test func theWordCountRunsIsWatchedAndEndsKilledAfterADelete() async throws {
        let data = try temporaryDirectory("sluice-serve")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try ServeProcess(
            dataDirectory: data, arguments: ["--allow-dir", ServeProcess.repository.appendingPathComponent("examples").path]
        )
        // As Livy's documentation writes it: POST /batches with a JSON body naming the application file.
        let created = try await server.post(["file": Self.wordCount, "name": "wordcount", "className": "ignored.Main"])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["id"] as? Int)
        #expect(created.json["name"] as? String == "wordcount")
        #expect(["starting", "running"].contains(created.json["state"] as? String ?? ""))
        #expect(created.json.keys.contains("appInfo") && created.json.keys.contains("log") && created.json.keys.contains("appId"))

        try await server.waitForState(id, "running")

        // The bundled text is 35 lines, read 12 per batch: three batches with records, then empty ones.
        let statistics = try await server.poll("three batches with records", timeout: 30) { () -> [String: Any]? in
            let statistics = try await server.get("/batches/\(id)/streaming/statistics").json
            return statistics["records"] as? Int == 35 ? statistics : nil
        }
        #expect(statistics["batchIntervalMilliseconds"] as? Int == 500)
        #expect((statistics["batchesCompleted"] as? Int ?? 0) >= 3)
        let partitions = try #require(statistics["partitions"] as? [[String: Any]])
        #expect(partitions.count == 1)
        #expect(partitions.first?["source"] as? String == "lines")
        #expect(partitions.first?["position"] as? Int == 35)
        #expect(partitions.first?["lag"] as? Int == 0, "everything offered was read")

        let batches = try await server.get("/batches/\(id)/streaming/batches?status=completed").json
        let list = try #require(batches["batches"] as? [[String: Any]])
        let withRecords = list.filter { ($0["records"] as? Int ?? 0) > 0 }.sorted { ($0["id"] as! Int) < ($1["id"] as! Int) }
        #expect(withRecords.map { $0["records"] as? Int } == [12, 12, 11])
        for batch in list {
            #expect(batch["processingMilliseconds"] is Double && batch["totalDelayMilliseconds"] is Double)
            #expect(batch["schedulingDelayMilliseconds"] is Double && batch["inputRate"] is Double)
        }
        #expect(withRecords.first?["inputRate"] as? Double == 24, "12 records in a 500 ms interval")
        // Per-stage figures: the split stage's records in are the batch's lines.
        let stages = try #require(withRecords.first?["stages"] as? [[String: Any]])
        let words = try #require(stages.first { $0["stage"] as? String == "words" })
        #expect(words["recordsIn"] as? Int == 12)
        #expect((words["recordsOut"] as? Int ?? 0) > 12)
        #expect(stages.contains { $0["stage"] as? String == "print" })

        // The log: the console sink's counts (standard output) and the JSON log records (standard error).
        let log = try await server.get("/batches/\(id)/log?from=0&size=1000").json
        let lines = try #require(log["log"] as? [String])
        #expect(log["total"] as? Int == lines.count && log["from"] as? Int == 0)
        #expect(lines.contains(where: Self.isCount), "the counts the console sink printed")
        #expect(lines.contains { $0.contains(#""component":"scheduler""#) && $0.contains("batch 0 completed") })
        let page = try await server.get("/batches/\(id)/log?from=1&size=2").json
        #expect((page["log"] as? [String]) == Array(lines[1...2]))

        let deleted = try await server.request("DELETE", "/batches/\(id)")
        #expect(deleted.status == 200)
        #expect(deleted.json["msg"] as? String == "deleted")
        let state = try await server.get("/batches/\(id)/state").json
        #expect(state["state"] as? String == "killed")
        #expect(state["id"] as? Int == id)
        #expect(server.childPIDs().isEmpty, "the pipeline's process ended")

        let listed = try await server.get("/batches?from=0&size=10").json
        #expect(listed["total"] as? Int == 1 && listed["from"] as? Int == 0)
        #expect((listed["sessions"] as? [[String: Any]])?.first?["state"] as? String == "killed")

        // A DELETE of an ended batch forgets it.
        #expect(try await server.request("DELETE", "/batches/\(id)").status == 200)
        #expect(try await server.get("/batches/\(id)").status == 404)
        #expect(try server.terminate() == 0)
    }

    @Test func aBoundedPipelineEndsInSuccess() async throws {
        let data = try temporaryDirectory("sluice-serve")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try ServeProcess(
            dataDirectory: data, arguments: ["--allow-dir", ServeProcess.repository.appendingPathComponent("examples").path]
        )
        let created = try await server.post(["file": Self.wordCount, "args": ["--batches", "3"], "numExecutors": 2])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["id"] as? Int)
        try await server.waitForState(id, "success")
        let statistics = try await server.get("/batches/\(id)/streaming/statistics").json
        #expect(statistics["batchesCompleted"] as? Int == 3)
        #expect(statistics["records"] as? Int == 35)
        let batch = try await server.get("/batches/\(id)").json
        #expect((batch["appInfo"] as? [String: Any])?["cause"] is NSNull)
        #expect((batch["log"] as? [String] ?? []).contains { $0.contains("stopped: batch limit reached") })
    }

    @Test func aFailingPipelineIsDeadWithItsCause() async throws {
        let data = try temporaryDirectory("sluice-serve")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try ServeProcess(dataDirectory: data)
        // Valid YAML naming a plugin no directory holds: the server accepts it, the child refuses it (exit 2).
        let created = try await server.post(["pipeline": ServeProcess.unknownPluginPipeline(name: "broken")])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["id"] as? Int)
        try await server.waitForState(id, "dead")
        let batch = try await server.get("/batches/\(id)").json
        let cause = try #require((batch["appInfo"] as? [String: Any])?["cause"] as? String)
        #expect(cause.hasPrefix("exited with status 2"), "\(cause)")
        #expect(cause.contains("no-such-source"), "the last log lines name the plugin: \(cause)")
        #expect(batch["name"] as? String == "broken", "the pipeline's own name when none is given")
    }

    @Test func aPipelineOverItsMemoryLimitIsKilledAndDead() async throws {
        let data = try temporaryDirectory("sluice-serve")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try ServeProcess(
            dataDirectory: data, arguments: ["--allow-dir", ServeProcess.repository.appendingPathComponent("examples").path]
        )
        // 1 MiB for the driver and 1 MiB for each of two executors: far less than any Swift process's resident set.
        let created = try await server.post([
            "file": Self.wordCount, "driverMemory": "1m", "executorMemory": "1m", "numExecutors": 2,
        ])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["id"] as? Int)
        #expect((created.json["appInfo"] as? [String: Any])?["memoryLimitBytes"] as? String == String(3 << 20))
        try await server.waitForState(id, "dead")
        let cause = try #require(((try await server.get("/batches/\(id)")).json["appInfo"] as? [String: Any])?["cause"] as? String)
        #expect(cause.hasPrefix("killed by signal 9 (SIGKILL): killed by sluice serve: resident memory"), "\(cause)")
        #expect(cause.contains("over the limit of 3145728 bytes"), "\(cause)")
    }
}
