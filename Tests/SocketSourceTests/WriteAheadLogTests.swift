import Foundation
import SluiceTesting
import Testing

@testable import SocketSource

/// The write-ahead log on real files: what is synced survives reopening, segments roll and are trimmed, a torn tail
/// is cut off, and damage stops the source with the segment and byte offset.
struct WriteAheadLogTests {
    static func stage(_ lines: [String], _ wal: WriteAheadLog) {
        for line in lines { Array(line.utf8).withUnsafeBytes { wal.stage($0) } }
    }

    static func contents(_ buffer: LineBuffer) -> [String] {
        var lines: [String] = []
        buffer.forEach(in: buffer.range) { lines.append(String(decoding: $0, as: UTF8.self)) }
        return lines
    }

    @Test func syncedLinesAreRecoveredAtTheirOffsets() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var buffer = LineBuffer()
        do {
            let wal = try WriteAheadLog(directory: directory.path, segmentLines: 2, recoveringInto: &buffer)
            Self.stage(["a", "b", "c"], wal)
            try wal.flush()
            #expect(wal.durableEnd == 0, "written is not yet durable")
            try wal.sync()
            #expect(wal.durableEnd == 3)
            Self.stage(["d", "e"], wal)
            try wal.flush()
            try wal.sync()
            // A flush goes to one segment; the next flush starts a new one once it holds `segmentLines` lines.
            #expect(wal.segmentCount == 2)
            wal.trim(below: 2)
            #expect(wal.segmentCount == 2, "lines 2..<3 of the first segment are not committed yet")
            wal.trim(below: 4)
            #expect(wal.segmentCount == 1, "the segment of lines 0..<3 is committed and deleted")
        }
        var recovered = LineBuffer()
        let wal = try WriteAheadLog(directory: directory.path, segmentLines: 2, recoveringInto: &recovered)
        #expect(recovered.range == 3..<5)
        #expect(Self.contents(recovered) == ["d", "e"])
        #expect(wal.nextOffset == 5)
    }

    @Test func aTornLastRecordIsCutOff() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var buffer = LineBuffer()
        do {
            let wal = try WriteAheadLog(directory: directory.path, recoveringInto: &buffer)
            Self.stage(["one", "two"], wal)
            try wal.flush()
            try wal.sync()
        }
        let segment = directory.path + "/wal-0.log"
        let handle = try #require(FileHandle(forWritingAtPath: segment))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("1234abcd 5 thr".utf8))  // a record cut short by a crash
        try handle.close()
        var recovered = LineBuffer()
        let wal = try WriteAheadLog(directory: directory.path, recoveringInto: &recovered)
        #expect(Self.contents(recovered) == ["one", "two"])
        Self.stage(["three"], wal)
        try wal.flush()
        try wal.sync()
        var again = LineBuffer()
        _ = try WriteAheadLog(directory: directory.path, recoveringInto: &again)
        #expect(Self.contents(again) == ["one", "two", "three"])
    }

    @Test func aDamagedRecordIsAnErrorNamingTheSegmentAndOffset() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var buffer = LineBuffer()
        do {
            let wal = try WriteAheadLog(directory: directory.path, recoveringInto: &buffer)
            Self.stage(["alpha", "beta"], wal)
            try wal.flush()
            try wal.sync()
        }
        let segment = directory.path + "/wal-0.log"
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: segment)))
        let header = "SLUICE-WAL 2\n".utf8.count
        bytes[bytes.count - 2] = UInt8(ascii: "X")  // a byte of "beta"
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let secondRecord = header + "00000000 5 alpha\n".utf8.count
        let error = #expect(throws: (any Error).self) {
            var recovered = LineBuffer()
            _ = try WriteAheadLog(directory: directory.path, recoveringInto: &recovered)
        }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("\(segment) is damaged at byte \(secondRecord)"), "\(message)")
        #expect(message.contains("checksum"), "\(message)")
    }
}
