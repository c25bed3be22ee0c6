import Foundation
import SluiceTesting
import Testing

@testable import SocketSource

/// The socket source as a whole, through the SDK's thunks (`PluginHarness`), against a local server.
@Suite(.timeLimit(.minutes(1)))
struct SocketSourceHarnessTests {
    @Test func receivedLinesAreOfferedAsRecords() throws {
        let server = try LineServer(sending: "a\r\nb\nlast")
        let source = try PluginHarness(SocketSource.self, config: #"{"port": \#(server.port)}"#)
        #expect(try source.waitForAvailable(2) == 0..<2)
        #expect(try source.read(offsets: 0..<2) == [Record("a"), Record("b")])
        _ = server
    }

    /// Limits far below a chunk's size: the receiving thread stops reading at the limit (checked before each read, so
    /// one read may pass it) and goes on once a commit makes room, so a reader that commits what it read gets every
    /// line, in order. (Counting committed lines still held in a chunk stopped it for good after the first lines.)
    @Test(arguments: [#""max_buffered_records": 7"#, #""max_buffered_bytes": 20"#])
    func aSmallBufferLimitHoldsBackAndReleasesEveryLine(_ limit: String) throws {
        let expected = (0..<200).map { String(format: "line%03d", $0) }  // 7 bytes each
        let server = try LineServer(sending: expected.joined(separator: "\n") + "\n")
        let source = try PluginHarness(SocketSource.self, config: #"{"port": \#(server.port), \#(limit)}"#)
        var received: [Record] = []
        let deadline = Date().addingTimeInterval(30)
        while received.count < expected.count && Date() < deadline {
            let offered = try source.available()
            if Int(offered.upperBound) > received.count {
                received += try source.read(offsets: UInt64(received.count)..<offered.upperBound)
                try source.commit(upTo: offered.upperBound)
            } else {
                usleep(2_000)
            }
        }
        #expect(received == expected.map { Record($0) })
        _ = server
    }

    /// With a state directory, lines are offered only once in the write-ahead log, and a new instance on the same
    /// directory offers the uncommitted ones again at the same offsets.
    @Test func uncommittedLinesSurviveANewInstance() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let server = try LineServer(sending: "one\ntwo\nthree\n")
            let source = try PluginHarness(SocketSource.self, config: #"{"port": \#(server.port)}"#, stateDirectory: directory.path)
            #expect(try source.waitForAvailable(3) == 0..<3)
            try source.commit(upTo: 1)
            _ = server
        }
        #expect(try directory.names().contains("wal-0.log"))
        let server = try LineServer(sending: "")
        let source = try PluginHarness(SocketSource.self, config: #"{"port": \#(server.port)}"#, stateDirectory: directory.path)
        try source.commit(upTo: 1)
        #expect(try source.available() == 0..<3)
        #expect(try source.read(offsets: 1..<3) == [Record("two"), Record("three")])
    }

    /// Without a write-ahead log, the committed offset is kept (atomically replaced) so numbering continues.
    @Test func withoutALogNumberingContinuesAfterTheLastCommit() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = { (port: Int) in #"{"port": \#(port), "write_ahead_log": false}"# }
        do {
            let server = try LineServer(sending: "x\ny\n")
            let source = try PluginHarness(SocketSource.self, config: config(server.port), stateDirectory: directory.path)
            #expect(try source.waitForAvailable(2) == 0..<2)
            try source.commit(upTo: 2)
            _ = server
        }
        #expect(try directory.names() == ["committed-offset"])
        #expect(try String(contentsOfFile: directory.path + "/committed-offset", encoding: .utf8) == "2\n")
        let server = try LineServer(sending: "z\n")
        let source = try PluginHarness(SocketSource.self, config: config(server.port), stateDirectory: directory.path)
        #expect(try source.waitForAvailable(1) == 2..<3)
        #expect(try source.read(offsets: 2..<3) == [Record("z")])
    }
}
