import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP server on 127.0.0.1 that accepts one connection at a time and sends it the lines it is given.
final class LineServer: @unchecked Sendable {  // `lines` and `connections` are guarded by `lock`
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var pending: [String] = []
    private var connections = 0
    private var stopped = false
    private var thread: Thread?

    /// Serves `lines` on `listening` (a listening socket and its port), by default a new one at a free port.
    init(lines: [String], listening: (fd: Int32, port: UInt16)? = nil) throws {
        pending = lines
        (listener, port) = try listening ?? Support.listenOnLoopback()
        let thread = Thread { [self] in serve() }
        self.thread = thread
        thread.start()
    }

    var connectionCount: Int { lock.withLock { connections } }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            let text = lock.withLock { () -> String in
                connections += 1
                defer { pending = [] }
                return pending.map { $0 + "\n" }.joined()
            }
            let bytes = Array(text.utf8)
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = send(client, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                    if written <= 0 { break }
                    offset += written
                }
            }
            // Keep the connection open, like a live feed, until the server stops.
            while lock.withLock({ !stopped }) { usleep(20_000) }
            close(client)
            return
        }
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

@Suite(.timeLimit(.minutes(3)))
struct SocketPipelineTests {
    @Test func socketWordCountAndCtrlCStopsAfterTheBatchInFlight() throws {
        let lines = (0..<2000).map { "line \($0 % 7) of the feed \($0 % 3)" }
        let server = try LineServer(lines: lines)
        defer { server.stop() }
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let interval = 200
        try """
            name: socket-count
            batch_interval: \(interval)ms
            sources:
              feed: {plugin: socket, config: {host: 127.0.0.1, port: \(server.port)}}
            stages:
              words: {from: feed, plugin: split}
              counts: {from: words, op: countByValue}
            sinks:
              out: {from: counts, plugin: files, config: {prefix: out/counts, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)

        var expected: [String: Int] = [:]
        for line in lines { for word in line.split(separator: " ") { expected[String(word), default: 0] += 1 } }

        let child = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "plain"], directory: work)
        func totals() -> [String: Int] {
            var counts: [String: Int] = [:]
            let out = work.appendingPathComponent("out")
            for file in (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? [] where file.hasPrefix("counts-") {
                let text = (try? String(contentsOf: out.appendingPathComponent(file), encoding: .utf8)) ?? ""
                for row in text.split(separator: "\n") {
                    let fields = row.split(separator: "\t")
                    if fields.count == 2 { counts[String(fields[0]), default: 0] += Int(fields[1]) ?? 0 }
                }
            }
            return counts
        }
        let arrived = child.waitFor(timeout: 30) { totals() == expected }
        #expect(arrived, "counts so far: \(totals().count) words; stderr:\n\(child.stderr)")
        #expect(server.connectionCount == 1)

        // The feed stays open, so only the signal can end the run. It ends after the batch in flight: at most the batch
        // that may have finished while the signal was sent and the one after it are reported past `reported`.
        let reported = ChaosTests.lastReportedBatch(child.stderr)
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(result.status == 0, "stderr:\n\(result.stderr)")
        #expect(result.stderr.contains("stopped: SIGINT"))
        let last = ChaosTests.lastReportedBatch(result.stderr)
        #expect(last <= reported + 2, "batches \(reported + 1)...\(last) ran after the signal:\n\(result.stderr)")
        #expect(totals() == expected, "nothing counted twice after the stop")
    }
}
