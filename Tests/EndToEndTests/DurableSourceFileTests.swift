import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The file-watch index (`files.log`) and the socket write-ahead log are checksummed: a damaged record stops the
/// source with an error naming the file and the byte offset, and never becomes data; a torn tail is cut off.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct DurableSourceFileTests {
    /// Ways to damage one record of a file in the checksummed line format.
    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case flippedPayloadByte, flippedChecksumDigit, lostNewline, addedNewline
        var testDescription: String { rawValue }

        /// Damages record `record` (0 is the header line) of the file at `url`; returns the record's byte offset.
        func apply(to url: URL, record: Int) throws -> Int {
            var bytes = [UInt8](try Data(contentsOf: url))
            let newlines = bytes.indices.filter { bytes[$0] == 10 }
            let start = newlines[record - 1] + 1
            let end = newlines[record]  // the record's newline
            switch self {
            case .flippedPayloadByte: bytes[end - 1] ^= 0x01
            case .flippedChecksumDigit: bytes[start] = bytes[start] == 0x30 ? 0x31 : 0x30
            case .lostNewline: bytes.remove(at: end)
            case .addedNewline: bytes[end - 2] = 10
            }
            try Data(bytes).write(to: url)
            return start
        }
    }

    static func fileWatchPipeline(_ work: URL) throws {
        try FileManager.default.createDirectory(at: work.appendingPathComponent("in"), withIntermediateDirectories: true)
        try """
            name: durable-files
            batch_interval: 50ms
            checkpoint: ck
            sources:
              f: {plugin: file-watch, config: {directory: in, start: earliest, poll_interval_ms: 20}}
            sinks:
              lines: {from: f, plugin: files, config: {prefix: out/lines, suffix: tsv, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
    }

    static func runUntilIdle(_ work: URL) throws -> Support.Result {
        try Support.sluice(["run", "pipeline.yaml", "--progress", "none", "--until-idle", "--idle-batches", "10"], directory: work, timeout: 60)
    }

    @Test(arguments: Damage.allCases)
    func aDamagedFileIndexStopsTheSourceNamingTheOffset(damage: Damage) throws {
        let work = try Support.makeTemporaryDirectory("sluice-files-log")
        defer { try? FileManager.default.removeItem(at: work) }
        try Self.fileWatchPipeline(work)
        for (name, text) in [("a.txt", "a1\na2\n"), ("b.txt", "b1\n"), ("c.txt", "c1\nc2\nc3\n")] {
            try text.write(to: work.appendingPathComponent("in/\(name)"), atomically: true, encoding: .utf8)
        }
        let first = try Self.runUntilIdle(work)
        #expect(first.status == 0, "\(first.stderr)")
        let out = work.appendingPathComponent("out")
        #expect(Support.sinkRecords(out, prefix: "lines") == ["a1", "a2", "b1", "c1", "c2", "c3"])

        let index = work.appendingPathComponent("ck/sources/f/files.log")
        let offset = try damage.apply(to: index, record: 2)  // b.txt's entry, with c.txt's after it
        try "d1\n".write(to: work.appendingPathComponent("in/d.txt"), atomically: true, encoding: .utf8)
        let second = try Self.runUntilIdle(work)
        #expect(second.status != 0, "a damaged index was used: \(second.stderr)")
        #expect(second.stderr.contains("\(index.path)' is damaged at byte \(offset):"), "\(second.stderr)")
        #expect(second.stderr.contains("sluice checkpoints reset"), "\(second.stderr)")
        #expect(Support.sinkRecords(out, prefix: "lines") == ["a1", "a2", "b1", "c1", "c2", "c3"], "nothing more reached the output")
    }

    @Test func aTornLastIndexRecordIsCutOffAndNothingIsReadTwice() throws {
        let work = try Support.makeTemporaryDirectory("sluice-files-log")
        defer { try? FileManager.default.removeItem(at: work) }
        try Self.fileWatchPipeline(work)
        try "a1\na2\n".write(to: work.appendingPathComponent("in/a.txt"), atomically: true, encoding: .utf8)
        #expect(try Self.runUntilIdle(work).status == 0)
        let index = work.appendingPathComponent("ck/sources/f/files.log")
        let handle = try FileHandle(forWritingTo: index)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("0badc0de 22 file\t2\t1\t3".utf8))  // a crash in the middle of an append
        try handle.close()
        try "b1\n".write(to: work.appendingPathComponent("in/b.txt"), atomically: true, encoding: .utf8)
        let second = try Self.runUntilIdle(work)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(Support.sinkRecords(work.appendingPathComponent("out"), prefix: "lines") == ["a1", "a2", "b1"])
        let text = try String(contentsOf: index, encoding: .utf8)
        #expect(!text.contains("0badc0de") && text.hasPrefix("SLUICE-FILES 2\n") && text.hasSuffix("\tb.txt\n"), "\(text)")
    }

    @Test func anIndexInTheEarlierFormatIsRefused() throws {
        let work = try Support.makeTemporaryDirectory("sluice-files-log")
        defer { try? FileManager.default.removeItem(at: work) }
        try Self.fileWatchPipeline(work)
        try "a1\n".write(to: work.appendingPathComponent("in/a.txt"), atomically: true, encoding: .utf8)
        let state = work.appendingPathComponent("ck/sources/f")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        try "file\t0\t1\t3\ta.txt\n".write(to: state.appendingPathComponent("files.log"), atomically: true, encoding: .utf8)
        let result = try Self.runUntilIdle(work)
        #expect(result.status != 0)
        #expect(result.stderr.contains("files.log' is damaged at byte 0: it has no 'SLUICE-FILES' header: it was written by an earlier version of sluice"), "\(result.stderr)")
    }

    static func socketPipeline(_ work: URL, port: UInt16, extra: String = "") throws {
        try """
            name: durable-wal
            batch_interval: 50ms
            checkpoint: ck
            sources:
              feed: {plugin: socket, config: {port: \(port), reconnect_initial_ms: 20\(extra)}}
            sinks:
              lines: {from: feed, plugin: files, config: {prefix: out/lines, suffix: tsv, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
    }

    @Test(arguments: Damage.allCases)
    func aDamagedWriteAheadLogStopsTheSourceNamingTheOffset(damage: Damage) throws {
        let work = try Support.makeTemporaryDirectory("sluice-wal-damage")
        defer { try? FileManager.default.removeItem(at: work) }
        let lines = (0..<5).map { "line-\($0)" }
        do {
            let server = try LineServer(lines: lines)
            defer { server.stop() }
            try Self.socketPipeline(work, port: server.port)
            let first = try Self.runUntilIdle(work)
            #expect(first.status == 0, "\(first.stderr)")
        }
        let out = work.appendingPathComponent("out")
        #expect(Support.sinkRecords(out, prefix: "lines") == lines)
        let segment = work.appendingPathComponent("ck/sources/feed/wal-0.log")
        let offset = try damage.apply(to: segment, record: 3)
        let server = try LineServer(lines: ["late"])
        defer { server.stop() }
        try Self.socketPipeline(work, port: server.port)
        let second = try Self.runUntilIdle(work)
        #expect(second.status != 0, "a damaged log was used: \(second.stderr)")
        // (`-0.log`, not `wal-0.log`: the host masks part of the long temporary path as if it were a secret.)
        #expect(second.stderr.contains("the write-ahead log ") && second.stderr.contains("-0.log is damaged at byte \(offset):"), "\(second.stderr)")
        #expect(Support.sinkRecords(out, prefix: "lines") == lines, "nothing more reached the output")
    }

    /// A log left by a crash in the middle of a write: the complete records are read, the torn one is cut off, and
    /// new lines continue after it.
    @Test func aTornLastLogRecordIsCutOffAndTheRestIsRead() throws {
        let work = try Support.makeTemporaryDirectory("sluice-socket-wal")
        defer { try? FileManager.default.removeItem(at: work) }
        func run(_ lines: [String]) throws -> Support.Result {
            let server = try LineServer(lines: lines)
            defer { server.stop() }
            try Self.socketPipeline(work, port: server.port)
            return try Self.runUntilIdle(work)
        }
        let first = try run(["logged-1", "logged-2"])
        #expect(first.status == 0, "\(first.stderr)")
        let segment = work.appendingPathComponent("ck/sources/feed/wal-0.log")
        let handle = try FileHandle(forWritingTo: segment)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("0badc0de 7 tor".utf8))  // the process died in the middle of a write
        try handle.close()
        let second = try run(["fresh-1", "fresh-2"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("2 lines from offset 0 recovered"), "\(second.stderr)")
        let out = work.appendingPathComponent("out")
        #expect(Support.sinkRecords(out, prefix: "lines") == ["logged-1", "logged-2", "fresh-1", "fresh-2"])
        let log = try String(contentsOf: segment, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ", maxSplits: 2).last.map(String.init) ?? "" }
        #expect(log == ["2", "logged-1", "logged-2", "fresh-1", "fresh-2"], "the header, then the four records")
    }
}
