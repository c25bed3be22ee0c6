import Foundation
import SluiceTesting
import Testing

@testable import FileWatchSource

/// The file-watch index log on real files.
struct IndexLogTests {
    static let entries: [IndexLog.Entry] = [
        .skipped(name: "old.txt"), .file(name: "a.txt", firstOffset: 0, lines: 3, size: 12),
        .file(name: "b\tc.txt", firstOffset: 3, lines: 1, size: 2), .partitions(3),
        .file(name: "d\t\te.txt", partition: 2, firstOffset: 0, lines: 5, size: 9),
    ]

    @Test func appendedEntriesAreReadBackInOrder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = IndexLog(directory: directory.path)
        #expect(try log.read().isEmpty, "no file yet")
        try log.append(Array(Self.entries.prefix(2)))
        try log.append(Array(Self.entries.dropFirst(2)))
        #expect(try log.read() == Self.entries)
        #expect(try String(contentsOfFile: log.path, encoding: .utf8).hasPrefix("SLUICE-FILES 2\n"))
    }

    @Test func aTornTailIsCutOffAndTheNextAppendStartsOnARecord() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = IndexLog(directory: directory.path)
        try log.append(Array(Self.entries.prefix(1)))
        let handle = try #require(FileHandle(forWritingAtPath: log.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("0badc0de 40 file\t9".utf8))
        try handle.close()
        #expect(try log.read() == Array(Self.entries.prefix(1)))
        try log.append(Array(Self.entries.dropFirst(1)))
        #expect(try log.read() == Self.entries)
    }

    @Test func damageIsAnErrorNamingTheFileAndOffset() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = IndexLog(directory: directory.path)
        try log.append(Self.entries)
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: log.path)))
        bytes[bytes.count - 3] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: log.path))
        let error = #expect(throws: (any Error).self) { _ = try log.read() }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("the file-watch index '\(log.path)' is damaged at byte"), "\(message)")
        #expect(message.contains("sluice checkpoints reset"), "\(message)")
    }

    @Test func aFileWithoutTheHeaderIsAnEarlierVersion() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = IndexLog(directory: directory.path)
        try "file\t0\t1\t2\ta.txt\n".write(toFile: log.path, atomically: false, encoding: .utf8)
        let error = #expect(throws: (any Error).self) { _ = try log.read() }
        #expect("\(error.map { "\($0)" } ?? "")".contains("earlier version of sluice"))
    }
}
