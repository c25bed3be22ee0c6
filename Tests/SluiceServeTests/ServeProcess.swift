import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A `sluice serve` process on 127.0.0.1 at a free port (`--address 127.0.0.1:0`; the port is read from the line
/// it prints), with a data directory of its own, talked to over real sockets. Killed when released, so a failed test
/// leaves no server behind; the pipelines it started are killed with it (each has a process group of its own).
final class ServeProcess: @unchecked Sendable {
    /// The build products: the test bundle sits there (or in a bundle directory inside it), beside `sluice`.
    static let products: URL = {
        var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/", !FileManager.default.fileExists(atPath: directory.appendingPathComponent("sluice").path) {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }()
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var sluice: URL { products.appendingPathComponent("sluice") }

    let process = Process()
    let dataDirectory: URL
    let output: URL
    let errors: URL
    private(set) var base: URL!

    /// Starts the server and waits until it listens.
    init(dataDirectory: URL, arguments: [String] = [], environment: [String: String] = [:]) throws {
        self.dataDirectory = dataDirectory
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        output = dataDirectory.appendingPathComponent("server.out")
        errors = dataDirectory.appendingPathComponent("server.err")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.executableURL = Self.sluice
        process.arguments = ["serve", "--address", "127.0.0.1:0", "--data-dir", dataDirectory.path] + arguments
        var inherited = ProcessInfo.processInfo.environment
        inherited["SLUICE_PLUGIN_PATH"] = nil
        process.environment = inherited.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let listening = try poll("the server to listen", timeout: 60) { () -> URL? in
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").first(where: { $0.contains("listening on ") }) else {
                if !process.isRunning { throw ServeTestError("the server exited: \(self.serverLog)") }
                return nil
            }
            return URL(string: String(line[line.range(of: "listening on ")!.upperBound...]))
        }
        base = listening
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        for pid in childPIDs() { kill(pid, SIGKILL) }
    }

    var serverLog: String { (try? String(contentsOf: errors, encoding: .utf8)) ?? "" }

    /// SIGTERM, then waits for the exit.
    func terminate(timeout: Double = 60) throws -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        try poll("the server to exit", timeout: timeout) { process.isRunning ? nil : true }
        return process.terminationStatus
    }

    /// Pipelines this server started that still run (their `--checkpoint-dir` is under its data directory).
    func childPIDs() -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            let command = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let text = String(decoding: command, as: UTF8.self)
            return text.contains("--events-fd") && text.contains(dataDirectory.path)
        }
    }

    // MARK: - HTTP

    struct Answer {
        var status: Int
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// A request shaped as Livy's documentation writes them: JSON, with `X-Requested-By`.
    func request(_ method: String, _ path: String, body: Data? = nil) async throws -> Answer {
        var request = URLRequest(url: URL(string: base.absoluteString + path)!)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("admin", forHTTPHeaderField: "X-Requested-By")
        request.httpBody = body
        request.timeoutInterval = 60
        let (data, response) = try await URLSession.shared.data(for: request)
        return Answer(status: (response as! HTTPURLResponse).statusCode, body: data)
    }

    func get(_ path: String) async throws -> Answer { try await request("GET", path) }

    func post(_ object: [String: Any]) async throws -> Answer {
        try await request("POST", "/batches", body: JSONSerialization.data(withJSONObject: object))
    }

    /// Polls `/batches/{id}/state` until it is `state`; fails early on another final state.
    func waitForState(_ id: Int, _ state: String, timeout: Double = 60) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try await get("/batches/\(id)/state").json["state"] as? String ?? ""
            if last == state { return }
            if ["success", "dead", "killed"].contains(last) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let batch = try await get("/batches/\(id)").text
        throw ServeTestError("batch \(id) is \(last), not \(state): \(batch)\nserver log:\n\(serverLog)")
    }

    /// Polls `condition` (every 50 ms) until it gives a value or `timeout` passes.
    @discardableResult
    func poll<T>(_ what: String, timeout: Double, _ condition: () async throws -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try await condition() { return value }
            try await Task.sleep(for: .milliseconds(50))
        }
        if let value = try await condition() { return value }
        throw ServeTestError("timed out after \(timeout) s waiting for \(what)\nserver log:\n\(serverLog)")
    }

    @discardableResult
    func poll<T>(_ what: String, timeout: Double, _ condition: () throws -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let value = try condition() { return value }
            usleep(50_000)
        }
        if let value = try condition() { return value }
        throw ServeTestError("timed out after \(timeout) s waiting for \(what)")
    }

    /// A pipeline the server accepts (valid YAML, a known shape) whose child refuses it at start: its source names a
    /// plugin no directory holds, `no-such-source`, so the child exits with status 2 naming it.
    static func unknownPluginPipeline(name: String) -> String {
        """
        name: \(name)
        batch_interval: 100ms
        sources:
          lines: {plugin: no-such-source, config: {}}
        sinks:
          out: {from: lines, plugin: console}
        """
    }
}

struct ServeTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A fresh directory under the system's temporary directory.
func temporaryDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
