import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `sluice-eventhubs-emulator` executable, started for a test: its port, and its fault commands on stdin.
/// Every read of its answers has a deadline that can fire (standard output is polled, never read blocking).
final class EmulatorProcess: @unchecked Sendable {  // used from one test at a time
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    private let scratch: URL
    let errors: URL
    private(set) var port = 0
    /// Bytes read from standard output that do not end a line yet.
    private var pending: [UInt8] = []

    /// - Parameter port: where to listen; 0 picks a free port.
    init(_ arguments: [String], port: Int = 0) throws {
        scratch = try Support.makeTemporaryDirectory("sluice-emulator")
        errors = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.executableURL = Support.binDirectory.appendingPathComponent("sluice-eventhubs-emulator")
        process.arguments = ["--port", "\(port)"] + arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        let first = try #require(readLine(timeout: 20), "the emulator did not start:\n\(stderr)")
        self.port = try #require(first.firstMatch(of: #/127\.0\.0\.1:(\d+)/#).flatMap { Int($0.1) }, "\(first)")
        _ = readLine(timeout: 5)  // the connection string
    }

    var stderr: String { (try? String(contentsOf: errors, encoding: .utf8)) ?? "" }

    var connectionString: String {
        "Endpoint=sb://127.0.0.1:\(port);SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
    }

    /// The next line of standard output, or nil at its end or when `timeout` seconds pass first.
    private func readLine(timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = output.fileHandleForReading.fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(left, 1) * 1000) + 1)
            guard ready > 0 else { continue }  // timed out (the deadline is checked above) or interrupted
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }  // the emulator closed its output (it exited)
            pending += buffer[..<count]
        }
    }

    /// Sends a command and waits for its acknowledgement.
    func command(_ line: String) throws {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        let answer = readLine(timeout: 30)
        try #require(answer == "ok \(line)", "emulator answered \(answer ?? "nothing") to '\(line)':\n\(stderr)")
    }

    /// Sends a command that prints a line before its acknowledgement, and returns that line.
    func query(_ line: String) throws -> String {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        let answer = try #require(readLine(timeout: 30), "no answer to '\(line)':\n\(stderr)")
        let ok = readLine(timeout: 30)
        try #require(ok == "ok \(line)", "emulator answered \(ok ?? "nothing") to '\(line)':\n\(stderr)")
        return answer
    }

    /// The connections the emulator accepted since it started.
    func acceptedConnections() throws -> Int {
        let answer = try query("connections")
        return try #require(answer.firstMatch(of: #/accepted=(\d+)/#).flatMap { Int($0.1) }, "\(answer)")
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: scratch)
    }
}
