import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One `sluice run` outlives its server: the server goes away, connecting is refused for a while, the server comes
/// back on the same port, and the lines it sends then arrive, each once.
@Suite(.timeLimit(.minutes(3)))
struct SocketReconnectTests {
    @Test func linesSentAfterTheServerComesBackArrive() throws {
        let work = try Support.makeTemporaryDirectory("sluice-reconnect")
        defer { try? FileManager.default.removeItem(at: work) }
        let first = try LineServer(lines: ["before-1", "before-2"])
        let port = first.port
        try """
            name: reconnect
            batch_interval: 50ms
            sources:
              feed: {plugin: socket, config: {port: \(port), reconnect_initial_ms: 20, reconnect_max_ms: 200}}
            sinks:
              lines: {from: feed, plugin: files, config: {prefix: out/lines, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "plain"], directory: work)
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        let out = work.appendingPathComponent("out")
        let before = child.waitFor(timeout: 30) { Support.sinkRecords(out, prefix: "lines") == ["before-1", "before-2"] }
        #expect(before, "\(child.stderr)")

        first.stop()
        // The source saw the connection end and a refused attempt: the server is really away before it comes back.
        let away = child.waitFor(timeout: 30) { child.stderr.contains("cannot connect to 127.0.0.1:\(port)") }
        try #require(away, "\(child.stderr)")
        #expect(child.stderr.contains("connection to 127.0.0.1:\(port) ended: closed by the peer"), "\(child.stderr)")
        let second = try LineServer(lines: ["after-1", "after-2"], listening: Support.listenOnLoopback(port: port))
        defer { second.stop() }
        let all = ["before-1", "before-2", "after-1", "after-2"]
        let after = child.waitFor(timeout: 30) { Support.sinkRecords(out, prefix: "lines") == all }
        #expect(after, "\(Support.sinkRecords(out, prefix: "lines")); stderr:\n\(child.stderr)")
        #expect(second.connectionCount == 1)

        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Support.sinkRecords(out, prefix: "lines") == all, "each line once")
    }
}
