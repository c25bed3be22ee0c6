import Foundation
import Testing

/// `sluice submit`, `status`, `logs`, `stop` and `top` against a real `sluice serve`: what each prints, and that it
/// agrees with the API.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ServerClientTests {
    /// Runs `sluice ARGUMENTS --server URL` to its end.
    static func sluice(_ arguments: [String], server: ServeProcess) throws -> (status: Int32, output: String, errors: String) {
        try sluice(arguments + ["--server", server.base.absoluteString])
    }

    /// Runs `sluice ARGUMENTS` to its end: its exit status, standard output and standard error (through files, so
    /// that neither can fill up while the other is read).
    static func sluice(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let directory = try temporaryDirectory("sluice-client-run")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out")
        let errors = directory.appendingPathComponent("err")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        FileManager.default.createFile(atPath: errors.path, contents: nil)
        let process = Process()
        process.executableURL = ServeProcess.sluice
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, try String(contentsOf: output, encoding: .utf8), try String(contentsOf: errors, encoding: .utf8))
    }

    @Test func submitStatusLogsTopAndStopDriveAPipeline() async throws {
        let data = try temporaryDirectory("sluice-client")
        defer { try? FileManager.default.removeItem(at: data) }
        let examples = ServeProcess.repository.appendingPathComponent("examples")
        let server = try ServeProcess(dataDirectory: data, arguments: ["--allow-dir", examples.path])

        let submitted = try Self.sluice(
            ["submit", examples.appendingPathComponent("wordcount/pipeline.yaml").path, "--name", "counted", "--wait"], server: server
        )
        #expect(submitted.status == 0, "\(submitted.errors)")
        let id = try #require(Int(submitted.output.trimmingCharacters(in: .whitespacesAndNewlines)), "submit prints the id: \(submitted.output)")
        #expect(submitted.errors.contains("batch \(id) 'counted' is running"), "\(submitted.errors)")

        // The bundled text is 35 lines: once they are counted, status and top show them.
        try await server.poll("35 records", timeout: 30) { () -> Bool? in
            try await server.get("/batches/\(id)/streaming/statistics").json["records"] as? Int == 35 ? true : nil
        }
        let list = try Self.sluice(["status"], server: server)
        #expect(list.status == 0)
        let row = try #require(list.output.split(separator: "\n").first { $0.hasPrefix("\(id) ") })
        #expect(row.split(separator: " ", omittingEmptySubsequences: true).prefix(3) == ["\(id)", "counted", "running"])
        let detail = try Self.sluice(["status", "\(id)"], server: server)
        #expect(detail.output.contains("batch \(id) 'counted': running"), "\(detail.output)")
        #expect(detail.output.contains("35 records"), "\(detail.output)")

        let top = try Self.sluice(["top", "--iterations", "2", "--interval", "0.2"], server: server)
        #expect(top.status == 0, "\(top.errors)")
        #expect(top.output.components(separatedBy: "sluice top — ").count == 3, "two refreshes: \(top.output)")
        #expect(top.output.contains("counted") && top.output.contains("35"), "\(top.output)")

        let stopped = try Self.sluice(["stop", "\(id)"], server: server)
        #expect(stopped.status == 0, "\(stopped.errors)")
        #expect(stopped.errors.contains("batch \(id) is killed"), "\(stopped.errors)")
        #expect(try await server.get("/batches/\(id)/state").json["state"] as? String == "killed")

        // Once the pipeline has ended its log no longer grows: what `logs` prints is what the API holds.
        let logs = try Self.sluice(["logs", "\(id)", "--tail", "1000"], server: server)
        let apiLog = try await server.get("/batches/\(id)/log?size=1000").json["log"] as? [String] ?? []
        #expect(!apiLog.isEmpty)
        #expect(logs.output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) == apiLog)
    }

    @Test func errorsSayWhatWentWrong() async throws {
        let data = try temporaryDirectory("sluice-client-errors")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = try ServeProcess(dataDirectory: data)

        let unknown = try Self.sluice(["status", "999"], server: server)
        #expect(unknown.status != 0)
        #expect(unknown.errors.contains("404"), "\(unknown.errors)")

        // Not under an allowed directory: the server's refusal, passed on.
        let outside = try Self.sluice(["submit", ServeProcess.repository.appendingPathComponent("examples/wordcount/pipeline.yaml").path], server: server)
        #expect(outside.status != 0)
        #expect(outside.errors.contains("403") || outside.errors.contains("400"), "\(outside.errors)")

        let (status, _, text) = try Self.sluice(["status", "--server", "http://127.0.0.1:1"])
        #expect(status != 0)
        #expect(text.contains("cannot reach the server at http://127.0.0.1:1"), "\(text)")
    }
}
