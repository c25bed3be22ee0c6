import Foundation
import Testing

/// Every class of bad request gets its status and a message that says what is wrong; the service routes answer.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RequestTests {
    @Test func badRequestsAreRefusedWithTheirStatusAndMessage() async throws {
        let data = try temporaryDirectory("sluice-serve-requests")
        defer { try? FileManager.default.removeItem(at: data) }
        let allowed = data.appendingPathComponent("allowed")
        try FileManager.default.createDirectory(at: allowed, withIntermediateDirectories: true)
        let server = try ServeProcess(
            dataDirectory: data.appendingPathComponent("data"), arguments: ["--allow-dir", allowed.path, "--max-body-bytes", "4096"]
        )

        let badJSON = try await server.request("POST", "/batches", body: Data(#"{"file": "/x.yaml", "args": [}"#.utf8))
        #expect(badJSON.status == 400)
        let badJSONMessage = badJSON.json["msg"] as? String ?? ""
        #expect(badJSONMessage.hasPrefix("malformed JSON: "), "\(badJSONMessage)")
        #expect(badJSONMessage.contains("character"), "the parser's location: \(badJSONMessage)")

        let badYAML = try await server.post(["pipeline": "name: x\nsources: [unclosed\n"])
        #expect(badYAML.status == 400)
        let badYAMLMessage = badYAML.json["msg"] as? String ?? ""
        #expect(badYAMLMessage.hasPrefix("invalid pipeline:"), "\(badYAMLMessage)")
        #expect(badYAMLMessage.contains("pipeline:3:") || badYAMLMessage.contains("pipeline:2:"), "line and column: \(badYAMLMessage)")

        let unknown = try await server.post(["pipeline": "name: x", "bogus": 1, "alsoBogus": true])
        #expect(unknown.status == 400)
        #expect(unknown.json["msg"] as? String == "unknown fields: alsoBogus, bogus")

        let argument = try await server.post(["pipeline": "name: x", "args": ["--plugin-dir", "/tmp"]])
        #expect(argument.status == 400)
        #expect((argument.json["msg"] as? String ?? "").contains("--plugin-dir is not allowed"))

        let missing = try await server.get("/batches/99")
        #expect(missing.status == 404)
        #expect(missing.json["msg"] as? String == "Session '99' not found.")
        #expect(try await server.get("/batches/99/state").status == 404)
        #expect(try await server.get("/batches/99/log").status == 404)
        #expect(try await server.request("DELETE", "/batches/99").status == 404)

        let large = try await server.post(["pipeline": String(repeating: "#", count: 8192)])
        #expect(large.status == 413)
        #expect((large.json["msg"] as? String ?? "").contains("larger than 4096 bytes"))

        // Outside the allowed directory, also through a symbolic link that points out of it.
        let outside = try await server.post(["file": "/etc/passwd"])
        #expect(outside.status == 403)
        #expect((outside.json["msg"] as? String ?? "").contains("is not under a directory the server may read"))
        let link = allowed.appendingPathComponent("link.yaml")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "/etc/hostname")
        let throughLink = try await server.post(["file": link.path])
        #expect(throughLink.status == 403)

        let listed = try await server.get("/batches").json
        #expect(listed["total"] as? Int == 0, "nothing refused was recorded")
    }

    @Test func healthReadyVersionAndMetricsAnswerUnderABasePath() async throws {
        let data = try temporaryDirectory("sluice-serve-routes")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try ServeProcess(dataDirectory: data, arguments: ["--base-path", "/livy"])
        #expect(server.base.path == "/livy")
        #expect(try await server.get("/health").status == 200)
        #expect(try await server.get("/ready").json["status"] as? String == "ready")
        #expect(try await server.get("/version").json["version"] as? String == "0.8.0-incubating")

        let pipeline = ServeProcess.repository.appendingPathComponent("examples/wordcount/pipeline.yaml")
        let text = try String(contentsOf: pipeline, encoding: .utf8)
            .replacingOccurrences(of: "directory: data", with: "directory: \(pipeline.deletingLastPathComponent().path)/data")
        let created = try await server.post(["pipeline": text, "name": "counted", "args": ["--batches", "3"]])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["id"] as? Int)
        try await server.waitForState(id, "success")

        let metrics = try await server.get("/metrics")
        #expect(metrics.status == 200)
        let values = try Self.samples(metrics.text)
        let labels = #"{id="\#(id)",pipeline="counted"}"#
        let statistics = try await server.get("/batches/\(id)/streaming/statistics").json
        #expect(values["sluice_batches_completed_total" + labels] == Double(statistics["batchesCompleted"] as? Int ?? -1))
        #expect(values["sluice_input_records_total" + labels] == Double(statistics["records"] as? Int ?? -1))
        #expect(values["sluice_batch_processing_seconds_count" + labels] == 3)
        #expect(values[#"sluice_source_partition_position{id="\#(id)",partition="0",pipeline="counted",source="lines"}"#] == 35)
        #expect(values[#"sluice_source_partition_lag_records{id="\#(id)",partition="0",pipeline="counted",source="lines"}"#] == 0)
        #expect(values[#"sluice_stage_records_in_total{id="\#(id)",pipeline="counted",stage="words"}"#] == 35)
        #expect(values["sluice_serve_submissions_total"] == 1)

        // Deleting the ended batch forgets it, and every series labelled with it goes from /metrics.
        #expect(try await server.request("DELETE", "/batches/\(id)").status == 200)
        #expect(try await server.get("/batches/\(id)").status == 404)
        let after = try Self.samples(try await server.get("/metrics").text)
        #expect(!after.keys.contains { $0.contains(#"id="\#(id)""#) }, "\(after.keys.filter { $0.contains("id=") })")
    }

    /// The samples of a Prometheus text exposition as Prometheus' own Python client parses it (it refuses what a
    /// scraper would), keyed `name{label="value",...}` with the labels sorted by name.
    static func samples(_ text: String) throws -> [String: Double] {
        let python = ServeProcess.repository.appendingPathComponent(".build/test-venv/bin/python3")
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            throw ServeTestError("\(python.path) is missing: run the tests with scripts/test, which installs prometheus_client there")
        }
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(sys.stdin.read()):
                for sample in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    out[sample.name + ("{" + labels + "}" if labels else "")] = sample.value
            print(json.dumps(out))
            """
        let directory = try temporaryDirectory("sluice-metrics-parse")
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("metrics.txt")
        let output = directory.appendingPathComponent("samples.json")
        let errors = directory.appendingPathComponent("errors.txt")
        try text.write(to: input, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: output.path, contents: nil)
        FileManager.default.createFile(atPath: errors.path, contents: nil)
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", script]
        process.standardInput = try FileHandle(forReadingFrom: input)
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ServeTestError("prometheus_client refused /metrics: \(try String(contentsOf: errors, encoding: .utf8))")
        }
        return try JSONDecoder().decode([String: Double].self, from: Data(contentsOf: output))
    }
}

/// One server per data directory.
@Suite(.timeLimit(.minutes(2)))
struct DataDirectoryTests {
    @Test func aSecondServerOnTheSameDataDirectoryIsRefused() throws {
        let data = try temporaryDirectory("sluice-serve-lock")
        defer { try? FileManager.default.removeItem(at: data) }
        let first = try ServeProcess(dataDirectory: data)
        let second = Process()
        second.executableURL = ServeProcess.sluice
        second.arguments = ["serve", "--address", "127.0.0.1:0", "--data-dir", data.path]
        let errors = Pipe()
        second.standardError = errors
        second.standardOutput = FileHandle.nullDevice
        try second.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        #expect(second.terminationStatus != 0)
        #expect(message.contains("\(data.path): another sluice serve uses this data directory"), "\(message)")
        #expect(first.process.isRunning)
    }
}
