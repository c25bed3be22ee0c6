import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One `sluice run` outlives its server: the server goes away, connecting is refused for a while, the server comes
/// back on the same port, and the lines it sends then arrive, each once.
@Suite(.timeLimit(.minutes(3)))
struct SocketReconnectTests {
    /// A listening socket on 127.0.0.1 at `port` (one an earlier server just released).
    static func listening(onPort port: UInt16) throws -> (fd: Int32, port: UInt16) {
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
        try #require(bound == 0 && listen(listener, 4) == 0, "cannot listen on 127.0.0.1:\(port) again")
        return (listener, port)
    }

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
        let second = try LineServer(lines: ["after-1", "after-2"], listening: Self.listening(onPort: port))
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
