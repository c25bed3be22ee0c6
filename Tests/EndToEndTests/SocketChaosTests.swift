import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP server on 127.0.0.1 that streams numbered lines ("0", "1", ...) to whoever is connected, a few at a time.
/// A line counts as sent once the kernel took all of it; when the peer dies, the next connection continues after
/// the last line sent, so the numbers a reader sees only ever grow.
final class NumberServer: @unchecked Sendable {  // the counters are guarded by `lock`
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var next = 0
    private var limit = Int.max
    private var stopped = false
    private var connections = 0
    private let linesPerTick: Int

    init(linesPerTick: Int = 20) throws {
        self.linesPerTick = linesPerTick
        (listener, port) = try Support.listenOnLoopback()
        Thread { [self] in serve() }.start()
    }

    /// The number of lines sent so far.
    var sent: Int { lock.withLock { next } }

    /// The number of connections accepted so far (one is served at a time).
    var connectionCount: Int { lock.withLock { connections } }

    /// Sends `count` more lines, then nothing.
    func finish(after count: Int) { lock.withLock { limit = next + count } }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            lock.withLock { connections += 1 }
            while true {
                let (first, count, done) = lock.withLock { (next, max(0, min(linesPerTick, limit - next)), stopped) }
                if done { break }
                if count > 0 {
                    let bytes = Array((first..<first + count).map { "\($0)\n" }.joined().utf8)
                    var offset = 0
                    while offset < bytes.count {
                        let n = bytes.withUnsafeBytes { send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                        if n <= 0 { break }
                        offset += n
                    }
                    // Count the lines that went out whole; a broken connection ends this client.
                    let whole = bytes[..<offset].reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
                    lock.withLock { next = first + whole }
                    if offset < bytes.count { break }
                }
                usleep(5_000)
            }
            close(client)
        }
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

/// The socket source's write-ahead log across SIGKILLs: every line that reached the log is counted exactly once.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct SocketChaosTests {
    static let kills = ProcessInfo.processInfo.environment["SLUICE_CHAOS_FULL"] == "1" ? 100 : 20

    /// The payloads of the complete records in the write-ahead log files of `directory` (after each file's header
    /// line, records are `CHECKSUM LENGTH PAYLOAD`).
    static func loggedLines(_ directory: URL) -> Set<Int> {
        var lines = Set<Int>()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] where name.hasPrefix("wal-") {
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)) else { continue }
            var text = Substring(String(decoding: data, as: UTF8.self))
            if let last = text.lastIndex(of: "\n") { text = text[...last] } else { continue }  // a torn last record is not logged
            for record in text.split(separator: "\n").dropFirst() {
                let fields = record.split(separator: " ", maxSplits: 2)
                if fields.count == 3, let number = Int(fields[2]) { lines.insert(number) }
            }
        }
        return lines
    }

    /// Every sink file's lines, in batch order.
    static func output(_ directory: URL) throws -> [Int] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("lines-") && $0.hasSuffix(".tsv") }
            .sorted { Int($0.dropFirst(6).dropLast(4))! < Int($1.dropFirst(6).dropLast(4))! }
        var result: [Int] = []
        for name in names {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            for line in text.split(separator: "\n") { result.append(try #require(Int(line), "\(name): '\(line)' is not a sent line")) }
        }
        return result
    }

    @Test(arguments: [0, 25])
    func everyLoggedLineIsCountedOnceAcrossKills(syncMilliseconds: Int) throws {
        let server = try NumberServer()
        defer { server.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-socket-chaos")
        defer { try? FileManager.default.removeItem(at: work) }
        let checkpoint = work.appendingPathComponent("ck")
        let out = work.appendingPathComponent("out")
        try """
            name: socket-chaos
            batch_interval: 50ms
            checkpoint: ck
            sources:
              feed: {plugin: socket, config: {port: \(server.port), reconnect_initial_ms: 10, reconnect_max_ms: 50, wal_sync_ms: \(syncMilliseconds), wal_segment_lines: 500}}
            sinks:
              lines: {from: feed, plugin: files, config: {prefix: out/lines, suffix: tsv, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        let wal = checkpoint.appendingPathComponent("sources/feed")

        var logged = Set<Int>()
        var killed = 0
        var random = SystemRandomNumberGenerator()
        while killed < Self.kills {
            // Each kill is timed from the run's first finished batch (start-up and recovery are over), not from the
            // clock; mostly soon after it, so that kills land in every phase of a batch, now and then later.
            let child = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "plain"], directory: work)
            let started = child.waitFor(timeout: 60) { !child.process.isRunning || ChaosTests.lastReportedBatch(child.stderr) >= 0 }
            try #require(started, "no batch within 60 s:\n\(child.stderr)")
            let life = killed % 5 == 4 ? 0.6 : Double.random(in: 0...0.25, using: &random)
            let exited = child.waitFor(timeout: life) { !child.process.isRunning }
            try #require(!exited, "sluice exited by itself (status \(child.process.terminationStatus)):\n\(child.stderr)")
            kill(child.process.processIdentifier, SIGKILL)
            child.process.waitUntilExit()
            killed += 1
            logged.formUnion(Self.loggedLines(wal))
        }
        // A last, calm run takes what is left, and the lines the server sends it once it is connected (not before:
        // lines sent to a killed reader's socket until the server notices are lost), then stops once idle.
        let tail = 300
        let connectionsBefore = server.connectionCount
        let last = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "none", "--until-idle", "--idle-batches", "40"], directory: work)
        let connected = last.waitFor(timeout: 10) { server.connectionCount > connectionsBefore }
        try #require(connected, "the last run did not connect:\n\(last.stderr)")
        let before = server.sent
        server.finish(after: tail)
        let result = last.wait(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        let sent = server.sent
        #expect(sent == before + tail, "the server sent \(sent - before) lines to the last run")

        // Booleans and counts only: the sets are too large to print.
        let output = try Self.output(out)
        let seen = Set(output)
        let twice = output.count - seen.count
        #expect(twice == 0, "\(twice) lines were counted twice")
        let ordered = zip(output, output.dropFirst()).allSatisfy { $0 < $1 }
        #expect(ordered, "lines are out of order")
        let lost = logged.subtracting(seen).sorted()
        #expect(lost.count == 0, "\(lost.count) lines reached the write-ahead log but not the output, e.g. \(lost.prefix(5))")
        let missing = Set(before..<sent).subtracting(seen).sorted()
        #expect(missing.count == 0, "\(missing.count) lines sent to the uninterrupted last run are missing, e.g. \(missing.prefix(5))")
        let invented = seen.filter { $0 >= sent }.count
        #expect(invented == 0, "\(invented) lines that were never sent")
        // The run did something: most sent lines made it (kills lose only what the kernel held for a dead reader).
        let (loggedCount, seenCount) = (logged.count, seen.count)
        #expect(loggedCount > 1000 && seenCount > sent / 2, "logged \(loggedCount), counted \(seenCount) of \(sent)")
        // Committed log segments are deleted.
        let segments = try FileManager.default.contentsOfDirectory(atPath: wal.path).filter { $0.hasPrefix("wal-") }
        #expect(segments.count <= 2, "\(segments.count) log segments remain: \(segments.sorted())")
    }

    /// `write_ahead_log: false` in a checkpointed pipeline: nothing is replayed, but numbering continues after the last
    /// commit, so a restart neither skips new lines nor reads old ones twice.
    @Test func withoutALogARestartContinuesAfterTheLastCommit() throws {
        let work = try Support.makeTemporaryDirectory("sluice-socket-nolog")
        defer { try? FileManager.default.removeItem(at: work) }
        var batches: [[String]] = []
        for (run, lines) in [["a1", "a2", "a3"], ["b1", "b2"]].enumerated() {
            let server = try LineServer(lines: lines)
            defer { server.stop() }
            try """
                name: socket-nolog
                batch_interval: 50ms
                checkpoint: ck
                sources:
                  feed: {plugin: socket, config: {port: \(server.port), write_ahead_log: false}}
                sinks:
                  lines: {from: feed, plugin: files, config: {prefix: out\(run)/lines, suffix: tsv, format: tsv}}
                """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
            let result = try Support.sluice(["run", "pipeline.yaml", "--progress", "none", "--until-idle", "--idle-batches", "10"], directory: work, timeout: 60)
            #expect(result.status == 0, "\(result.stderr)")
            let out = work.appendingPathComponent("out\(run)")
            var got: [String] = []
            for name in (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? [] {
                got += try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").map(String.init)
            }
            batches.append(got.sorted())
        }
        #expect(batches == [["a1", "a2", "a3"], ["b1", "b2"]])
        let stored = try String(contentsOf: work.appendingPathComponent("ck/sources/feed/committed-offset"), encoding: .utf8)
        #expect(stored == "5\n")
        let walFiles = try FileManager.default.contentsOfDirectory(atPath: work.appendingPathComponent("ck/sources/feed").path).filter { $0.hasPrefix("wal-") }
        #expect(walFiles.isEmpty)
    }
}
