import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP server on 127.0.0.1 that sends `payload` to its first connection and closes every connection at once,
/// recording when each was accepted.
final class ClosingServer: @unchecked Sendable {  // `accepted` is guarded by `lock`
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var accepted: [Date] = []

    init(payload: [UInt8] = []) throws {
        (listener, port) = try Support.listenOnLoopback()
        Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                let first = lock.withLock { accepted.append(Date()); return accepted.count == 1 }
                if first {
                    var offset = 0
                    while offset < payload.count {
                        let n = payload.withUnsafeBytes { send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                        if n <= 0 { break }
                        offset += n
                    }
                }
                close(client)
            }
        }.start()
    }

    var acceptTimes: [Date] { lock.withLock { accepted } }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

@Suite(.serialized, .timeLimit(.minutes(5)))
struct SocketSourceBehaviorTests {
    /// One table of inputs for both sources: the same bytes give the same records (docs/pipeline.md, "Line endings").
    static let lineEndingInput = Array("crlf\r\nlf\ntwo returns\r\r\nin\rside\n\r\n\rleading\nlast\r".utf8)
    static let lineEndingRecords = ["crlf", "lf", "two returns\r", "in\rside", "", "\rleading", "last\r"]

    static func write(_ pipeline: String, to work: URL) throws {
        try pipeline.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
    }

    @Test func bothSourcesEndLinesTheSameWay() throws {
        let work = try Support.makeTemporaryDirectory("sluice-line-endings")
        defer { try? FileManager.default.removeItem(at: work) }
        try FileManager.default.createDirectory(at: work.appendingPathComponent("in"), withIntermediateDirectories: true)
        try Data(Self.lineEndingInput).write(to: work.appendingPathComponent("in/input.txt"))
        let server = try ClosingServer(payload: Self.lineEndingInput)
        defer { server.stop() }
        try Self.write("""
            name: line-endings
            batch_interval: 50ms
            sources:
              file: {plugin: file-watch, config: {directory: in, start: earliest}}
              feed: {plugin: socket, config: {port: \(server.port)}}
            sinks:
              fromFile: {from: file, plugin: files, config: {prefix: out/file, format: tsv}}
              fromSocket: {from: feed, plugin: files, config: {prefix: out/socket, format: tsv}}
            """, to: work)
        let result = try Support.sluice(["run", "pipeline.yaml", "--progress", "none", "--until-idle", "--idle-batches", "10"], directory: work, timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        let out = work.appendingPathComponent("out")
        #expect(Support.sinkRecords(out, prefix: "file") == Self.lineEndingRecords)
        #expect(Support.sinkRecords(out, prefix: "socket") == Self.lineEndingRecords)
    }

    /// A line longer than the receive buffer is cut when its first bytes arrive; the warning gives its whole length.
    @Test func theLongLineWarningStatesTheRealLength() throws {
        let work = try Support.makeTemporaryDirectory("sluice-long-line")
        defer { try? FileManager.default.removeItem(at: work) }
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 700_000)
        let server = try ClosingServer(payload: Array("short\n".utf8) + long + Array("\r\nafter\n".utf8))
        defer { server.stop() }
        try Self.write("""
            name: long-line
            batch_interval: 50ms
            sources:
              feed: {plugin: socket, config: {port: \(server.port), max_line_bytes: 1000}}
            sinks:
              out: {from: feed, plugin: files, config: {prefix: out/lines, format: tsv}}
            """, to: work)
        let result = try Support.sluice(["run", "pipeline.yaml", "--progress", "none", "--until-idle", "--idle-batches", "10"], directory: work, timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("a line of 700000 bytes was cut to max_line_bytes (1000)"), "\(result.stderr)")
        #expect(Support.sinkRecords(work.appendingPathComponent("out"), prefix: "lines") == ["short", String(repeating: "x", count: 1000), "after"])
    }

    /// A server that accepts and at once drops every connection: the delays keep doubling up to the maximum.
    @Test func theReconnectDelayKeepsGrowingOverShortConnections() throws {
        let work = try Support.makeTemporaryDirectory("sluice-backoff")
        defer { try? FileManager.default.removeItem(at: work) }
        let server = try ClosingServer()
        defer { server.stop() }
        try Self.write("""
            name: backoff
            batch_interval: 50ms
            sources:
              feed: {plugin: socket, config: {port: \(server.port), reconnect_initial_ms: 25, reconnect_max_ms: 400}}
            sinks:
              out: {from: feed, plugin: console}
            """, to: work)
        let child = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "none"], directory: work)
        defer {
            kill(child.process.processIdentifier, SIGINT)
            _ = child.wait(timeout: 10)
        }
        // Delays 25, 50, 100, 200, 400, 400 ms: the 7th connection comes about 1.2 s after the first.
        let connected = child.waitFor(timeout: 20) { server.acceptTimes.count >= 7 }
        try #require(connected, "\(server.acceptTimes.count) connections; stderr:\n\(child.stderr)")
        let times = server.acceptTimes
        let gaps = zip(times, times.dropFirst()).map { $1.timeIntervalSince($0) }
        #expect(gaps[4] >= 0.35 && gaps[5] >= 0.35, "gaps between connections: \(gaps)")
        #expect(gaps[3] >= 0.18, "gaps between connections: \(gaps)")
    }

    /// Mounting a small tmpfs needs root (the sandbox and CI run as root).
    static let canMountTmpfs = geteuid() == 0

    /// The checkpoint directory on a 1 MiB tmpfs that a filler file has almost filled: when the write-ahead log
    /// cannot be written the source stops reading (one warning), keeps the connection, and once space is freed goes
    /// on without losing a line.
    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root"))
    func aFullDiskUnderTheLogHoldsTheSenderAndLosesNoLine() throws {
        let work = try Support.makeTemporaryDirectory("sluice-wal-full")
        defer { try? FileManager.default.removeItem(at: work) }
        let disk = work.appendingPathComponent("ck")
        try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
        let mounted = try Support.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", disk.path], timeout: 10)
        try #require(mounted.status == 0, "cannot mount a tmpfs: \(mounted.stderr)")
        defer { _ = try? Support.run("/bin/umount", [disk.path], timeout: 10) }
        var space = statvfs()
        try #require(statvfs(disk.path, &space) == 0)
        let filler = disk.appendingPathComponent("filler")
        try Data(count: Int(space.f_bavail) * Int(space.f_frsize) - 48 * 1024).write(to: filler)

        let server = try NumberServer()
        defer { server.stop() }
        try Self.write("""
            name: wal-full
            batch_interval: 50ms
            checkpoint: ck
            sources:
              feed: {plugin: socket, config: {port: \(server.port), reconnect_initial_ms: 10, reconnect_max_ms: 50}}
            sinks:
              lines: {from: feed, plugin: files, config: {prefix: out/lines, suffix: tsv, format: tsv}}
            """, to: work)
        let child = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "none"], directory: work)
        defer {
            if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) }
            child.process.waitUntilExit()
        }
        let full = child.waitFor(timeout: 30) { statvfs(disk.path, &space) == 0 && space.f_bavail == 0 }
        try #require(full, "the log never filled the disk; stderr:\n\(child.stderr)")
        let stopped = "reading from 127.0.0.1:\(server.port) stops"
        #expect(child.waitFor(timeout: 10) { child.stderr.contains(stopped) }, "\(child.stderr)")
        // While the disk is full the connection stays: no reconnect loop (which dropped what it had read).
        let reconnected = child.waitFor(timeout: 2) { server.connectionCount > 1 }
        #expect(!reconnected, "reconnected while the disk was full:\n\(child.stderr)")

        try FileManager.default.removeItem(at: filler)
        let resumed = child.waitFor(timeout: 30) { child.stderr.contains("the write-ahead log takes lines again") }
        #expect(resumed, "\(child.stderr)")
        server.finish(after: 300)
        let out = work.appendingPathComponent("out")
        func output() -> [Int] { Support.sinkRecords(out, prefix: "lines").compactMap { Int($0) } }
        var previous = -1
        let drained = child.waitFor(timeout: 60) {
            // Done once the server sent its last line and all of it arrived.
            let sent = server.sent
            defer { previous = sent }
            return sent == previous && output().count >= sent
        }
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 10)
        #expect(drained && result.status == 0, "\(result.stderr)")
        let sent = server.sent
        let lines = output()
        let exact = lines == Array(0..<sent)
        #expect(exact, "\(lines.count) lines for \(sent) sent; first wrong at \(zip(lines, 0...).first { $0 != $1 }.map { "\($0)" } ?? "the end")")
        #expect(server.connectionCount == 1)
        #expect(result.stderr.components(separatedBy: stopped).count == 2, "the warning is logged once:\n\(result.stderr)")
    }
}
