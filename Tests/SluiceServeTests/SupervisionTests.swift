import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The supervisor's promises: a pipeline killed with SIGKILL under `restart: on-failure` comes back from its
/// checkpoint and its output is exactly an uninterrupted run's; a server that stops and starts again resumes the
/// pipelines that were running.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SupervisionTests {
    /// A file-watch → files pipeline over `input`, 5 lines a batch, every 50 ms.
    static func pipeline(input: URL, output: URL) -> String {
        """
        name: copy
        batch_interval: 50ms
        sources:
          lines: {plugin: file-watch, max_records_per_partition: 5, config: {directory: "\(input.path)", glob: "*.txt", start: earliest}}
        sinks:
          out: {from: lines, plugin: files, config: {prefix: "\(output.path)/out", suffix: tsv, format: tsv}}
        """
    }

    /// The records a files sink wrote, in batch order (files `out-<batch time>.tsv`).
    static func records(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("out-") && $0.hasSuffix(".tsv") }
            .sorted { Int($0.dropFirst(4).dropLast(4)) ?? 0 < Int($1.dropFirst(4).dropLast(4)) ?? 0 }
            .flatMap { name in
                try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").map(String.init)
            }
    }

    static func makeInput(_ work: URL, lines: Int) throws -> URL {
        let input = work.appendingPathComponent("input")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try (1...lines).map { "line \($0) word\($0 % 7)" }.joined(separator: "\n").appending("\n")
            .write(to: input.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        return input
    }

    @Test func aChildKilledWithSIGKILLRestartsAndItsOutputIsThatOfAnUninterruptedRun() async throws {
        let work = try temporaryDirectory("sluice-serve-restart")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = try Self.makeInput(work, lines: 300)
        let expectedOutput = work.appendingPathComponent("expected")
        let servedOutput = work.appendingPathComponent("served")
        for directory in [expectedOutput, servedOutput] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        // The uninterrupted run: `sluice run` in the foreground, with a checkpoint as the server gives one.
        let reference = work.appendingPathComponent("reference.yaml")
        try Self.pipeline(input: input, output: expectedOutput).write(to: reference, atomically: true, encoding: .utf8)
        let run = Process()
        run.executableURL = ServeProcess.sluice
        run.arguments = ["run", reference.path, "--until-idle", "--progress", "none", "--checkpoint-dir", work.appendingPathComponent("ckpt").path]
        run.standardOutput = FileHandle.nullDevice
        run.standardError = FileHandle.nullDevice
        try run.run()
        run.waitUntilExit()
        #expect(run.terminationStatus == 0)
        let expected = try Self.records(expectedOutput)
        #expect(expected.count == 300)

        let server = try ServeProcess(dataDirectory: work.appendingPathComponent("data"))
        // A second pipeline beside it, which the first one's death must not touch.
        let bystanderInput = try Self.makeInput(work.appendingPathComponent("bystander"), lines: 3)
        let bystanderOutput = work.appendingPathComponent("bystander-out")
        try FileManager.default.createDirectory(at: bystanderOutput, withIntermediateDirectories: true)
        let bystander = try #require(
            try await server.post(["pipeline": Self.pipeline(input: bystanderInput, output: bystanderOutput)]).json["id"] as? Int
        )
        try await server.waitForState(bystander, "running")
        let bystanderPID = try await server.get("/batches/\(bystander)").json["appInfo"].flatMap { ($0 as? [String: Any])?["pid"] as? String }

        let created = try await server.post([
            "pipeline": Self.pipeline(input: input, output: servedOutput), "args": ["--until-idle"],
            "conf": ["restart": "on-failure"],
        ])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["id"] as? Int)
        try await server.waitForState(id, "running")
        // Killed in the middle: after some batches committed, long before the 60 that the input takes.
        let pid = try await server.poll("a few batches", timeout: 30) { () -> Int32? in
            let statistics = try await server.get("/batches/\(id)/streaming/statistics").json
            guard statistics["batchesCompleted"] as? Int ?? 0 >= 5 else { return nil }
            let batch = try await server.get("/batches/\(id)").json
            return ((batch["appInfo"] as? [String: Any])?["pid"] as? String).flatMap { Int32($0) }
        }
        #expect(kill(pid, SIGKILL) == 0)
        let restarted = try await server.poll("the restart", timeout: 30) { () -> [String: Any]? in
            let batch = try await server.get("/batches/\(id)").json
            return (batch["appInfo"] as? [String: Any])?["restarts"] as? String == "1" ? batch : nil
        }
        let cause = (restarted["appInfo"] as? [String: Any])?["cause"] as? String ?? ""
        #expect(cause.hasPrefix("killed by signal 9 (SIGKILL)"), "\(cause)")
        try await server.waitForState(id, "success", timeout: 120)
        #expect(try Self.records(servedOutput) == expected)
        let after = try await server.get("/batches/\(bystander)").json
        #expect(after["state"] as? String == "running")
        #expect((after["appInfo"] as? [String: Any])?["pid"] as? String == bystanderPID, "the same process, never restarted")
        let log = try await server.get("/batches/\(id)/log?from=0&size=1000").json["log"] as? [String] ?? []
        #expect(log.contains { $0.contains("restarting in") })
    }

    @Test func aServerRestartResumesThePipelinesThatWereRunning() async throws {
        let work = try temporaryDirectory("sluice-serve-resume")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = try Self.makeInput(work, lines: 20)
        let output = work.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let data = work.appendingPathComponent("data")

        var server: ServeProcess? = try ServeProcess(dataDirectory: data)
        let created = try await server!.post(["pipeline": Self.pipeline(input: input, output: output)])
        let id = try #require(created.json["id"] as? Int)
        try await server!.waitForState(id, "running")
        try await server!.poll("the input read", timeout: 30) { () -> Bool? in
            let statistics = try await server!.get("/batches/\(id)/streaming/statistics").json
            return statistics["records"] as? Int == 20 ? true : nil
        }
        // SIGTERM: every pipeline stops gracefully, then the server; the record still says running.
        #expect(try server!.terminate() == 0)
        #expect(server!.childPIDs().isEmpty)
        server = nil

        let again = try ServeProcess(dataDirectory: data)
        try await again.waitForState(id, "running")
        let batch = try await again.get("/batches/\(id)").json
        #expect((batch["appInfo"] as? [String: Any])?["restarts"] as? String == "0")
        // Resumed from its checkpoint: nothing read twice.
        try await again.poll("a batch after the restart", timeout: 30) { () -> Bool? in
            let statistics = try await again.get("/batches/\(id)/streaming/statistics").json
            return statistics["batchesCompleted"] as? Int ?? 0 >= 1 ? true : nil
        }
        let statistics = try await again.get("/batches/\(id)/streaming/statistics").json
        #expect(statistics["records"] as? Int == 0, "the new child read nothing again")
        for partition in statistics["partitions"] as? [[String: Any]] ?? [] { #expect(partition["position"] as? Int == 20) }
        #expect(try Self.records(output).count == 20)
        let log = try await again.get("/batches/\(id)/log").json["log"] as? [String] ?? []
        #expect(log.contains { $0.contains("started again after a server restart") })
    }
}

/// A server killed with SIGKILL cannot stop its pipelines: each notices on its next event and stops itself.
@Suite(.timeLimit(.minutes(3)))
struct OrphanTests {
    @Test func pipelinesOfAServerKilledWithSIGKILLStopThemselvesAndResumeWithTheNextServer() async throws {
        let work = try temporaryDirectory("sluice-serve-orphan")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = try SupervisionTests.makeInput(work, lines: 20)
        let output = work.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let data = work.appendingPathComponent("data")
        let server = try ServeProcess(dataDirectory: data)
        let id = try #require(
            try await server.post(["pipeline": SupervisionTests.pipeline(input: input, output: output)]).json["id"] as? Int
        )
        try await server.waitForState(id, "running")
        #expect(server.childPIDs().count == 1)
        kill(server.process.processIdentifier, SIGKILL)
        server.process.waitUntilExit()
        // Its next event write fails (EPIPE): it stops after its batch in flight, as after a SIGTERM.
        try await server.poll("the pipeline to stop by itself", timeout: 30) { server.childPIDs().isEmpty ? true : nil }

        let again = try ServeProcess(dataDirectory: data)
        try await again.waitForState(id, "running")
        try await again.poll("the input read", timeout: 30) { () -> Bool? in
            try SupervisionTests.records(output).count == 20 ? true : nil
        }
        #expect(try SupervisionTests.records(output) == (1...20).map { "line \($0) word\($0 % 7)" })
    }
}

/// `restart: on-failure` in the cases that must not loop for ever unnoticed.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RestartPolicyTests {
    @Test func aPipelineThatKeepsCrashingBacksOffAndADeleteEndsItKilled() async throws {
        let work = try temporaryDirectory("sluice-serve-backoff")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = try SupervisionTests.makeInput(work, lines: 20)
        let output = work.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        // Every child sends itself SIGKILL once batch 0's sinks committed, before its checkpoint: each restart
        // replays batch 0 and dies again at the same point.
        let server = try ServeProcess(
            dataDirectory: work.appendingPathComponent("data"), environment: ["SLUICE_TEST_CRASH": "after-sinks:0"]
        )
        let created = try await server.post([
            "pipeline": SupervisionTests.pipeline(input: input, output: output), "conf": ["restart": "on-failure"],
        ])
        let id = try #require(created.json["id"] as? Int)
        try await server.poll("two restarts", timeout: 30) { () -> Bool? in
            let batch = try await server.get("/batches/\(id)").json
            return Int((batch["appInfo"] as? [String: Any])?["restarts"] as? String ?? "") ?? 0 >= 2 ? true : nil
        }
        let log = try await server.get("/batches/\(id)/log?from=0&size=1000").json["log"] as? [String] ?? []
        let waits = log.filter { $0.hasPrefix("sluice serve: killed by signal 9 (SIGKILL); restarting in ") }
        #expect(waits.count >= 2)
        #expect(waits.first?.contains("restarting in 0.5 seconds (restart 1)") == true, "\(waits)")
        #expect(waits.dropFirst().first?.contains("restarting in 1.0 seconds (restart 2)") == true, "\(waits)")
        #expect(try await server.get("/batches/\(id)/state").json["state"] as? String == "starting")

        #expect(try await server.request("DELETE", "/batches/\(id)").json["msg"] as? String == "deleted")
        #expect(try await server.get("/batches/\(id)/state").json["state"] as? String == "killed")
        #expect(server.childPIDs().isEmpty)
        #expect(try SupervisionTests.records(output).count == 5, "batch 0's records once, however often it was replayed")
    }

    @Test func anInvalidPipelineIsNotRestarted() async throws {
        let data = try temporaryDirectory("sluice-serve-invalid")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try ServeProcess(dataDirectory: data)
        let pipeline = ServeProcess.unknownPluginPipeline(name: "invalid")
        let created = try await server.post(["pipeline": pipeline, "conf": ["restart": "on-failure"]])
        let id = try #require(created.json["id"] as? Int)
        try await server.waitForState(id, "dead")
        let info = try await server.get("/batches/\(id)").json["appInfo"] as? [String: Any] ?? [:]
        #expect(info["restarts"] as? String == "0")
        #expect((info["cause"] as? String ?? "").hasPrefix("not restarted: the configuration is invalid; exited with status 2"))
    }
}
