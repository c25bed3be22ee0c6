import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Paths and process helpers shared by the end-to-end tests, which run the real `sluice` executable.
enum Support {
    /// The repository root (from this file's path).
    static let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The build products directory: the test bundle lives in it, next to `sluice` and the plugin .so files.
    static let binDirectory: URL = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // The test binary may sit inside a bundle directory (`*.xctest`); walk up to the directory with `sluice`.
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("sluice").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()

    static var sluice: URL { binDirectory.appendingPathComponent("sluice") }

    /// A listening TCP socket on 127.0.0.1 at a free port, or at `port` (say, one a stopped server released).
    static func listenOnLoopback(port: UInt16 = 0) throws -> (fd: Int32, port: UInt16) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(listener, 4) == 0, "cannot listen on 127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        return (listener, UInt16(bigEndian: address.sin_port))
    }

    /// A fresh temporary directory, removed by `cleanup()`.
    static func makeTemporaryDirectory(_ label: String = "sluice-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// A running child process whose output is collected into files (so pipes never fill up).
    /// When it is released, a process still running is killed (a failed test leaves no orphan behind) and its output
    /// files are removed (chaos runs start hundreds of children).
    final class Child: @unchecked Sendable {
        let process = Process()
        let outURL: URL
        let errURL: URL
        private let scratch: URL

        init(_ executable: URL, _ arguments: [String], directory: URL? = nil, environment: [String: String] = [:]) throws {
            scratch = try Support.makeTemporaryDirectory("sluice-child")
            outURL = scratch.appendingPathComponent("stdout")
            errURL = scratch.appendingPathComponent("stderr")
            _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
            _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
            process.executableURL = executable
            process.arguments = arguments
            if let directory { process.currentDirectoryURL = directory }
            var env = ProcessInfo.processInfo.environment
            env["SLUICE_PLUGIN_PATH"] = nil
            for (key, value) in environment { env[key] = value }
            process.environment = env
            process.standardOutput = try FileHandle(forWritingTo: outURL)
            process.standardError = try FileHandle(forWritingTo: errURL)
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            try? FileManager.default.removeItem(at: scratch)
        }

        var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

        /// Waits for exit up to `timeout` seconds; kills the process and records an issue when it does not exit.
        func wait(timeout: Double) -> Result {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning {
                Issue.record("process did not exit within \(timeout) s; killing it. stderr:\n\(stderr)")
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            return Result(status: process.terminationStatus, stdout: stdout, stderr: stderr)
        }

        /// Polls `condition` every 20 ms until it holds or `timeout` passes.
        func waitFor(timeout: Double, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if condition() { return true }
                usleep(20_000)
            }
            return condition()
        }
    }

    /// Runs `sluice` with `arguments` to completion (at most `timeout` seconds).
    static func sluice(
        _ arguments: [String],
        directory: URL? = nil,
        environment: [String: String] = [:],
        timeout: Double = 120
    ) throws -> Result {
        try Child(sluice, arguments, directory: directory, environment: environment).wait(timeout: timeout)
    }

    /// Runs any program to completion.
    static func run(_ executable: String, _ arguments: [String], directory: URL? = nil, timeout: Double = 600) throws
        -> Result
    {
        try Child(URL(fileURLWithPath: executable), arguments, directory: directory).wait(timeout: timeout)
    }
}

extension Support {
    /// The records a `files` sink wrote under `directory` (files `PREFIX-<batch time>…`), in batch order, split at
    /// `\n` bytes only (a `\r` stays in its record).
    static func sinkRecords(_ directory: URL, prefix: String) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasPrefix(prefix + "-") && !$0.hasPrefix(".") }
            .sorted { ($0.count, $0) < ($1.count, $1) }
        var records: [String] = []
        for name in names {
            let data = (try? Data(contentsOf: directory.appendingPathComponent(name))) ?? Data()
            records += data.split(separator: 10, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
        }
        return records
    }
}
