import Foundation
import SluiceSDK
import SluiceTesting
import Testing

@testable import FileWatchSource

/// `IndexedFile` on real files: line counts, the sparse index, and reading any range of lines.
struct IndexedFileTests {
    static func lines(_ file: IndexedFile, _ from: Int, _ to: Int) throws -> [Record] {
        var builder = BatchBuilder()
        try file.read(lines: from, to: to, into: &builder)
        return OwnedBatch(builder).records
    }

    @Test func linesAndLineEndingsFollowTheSharedRule() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/a.txt"
        try "one\r\ntwo\rthree\n\nlast\r".write(toFile: path, atomically: false, encoding: .utf8)
        let file = try IndexedFile.index(path: path, firstOffset: 10)
        #expect(file.lineCount == 4)
        #expect(file.endOffset == 14)
        #expect(try Self.lines(file, 0, 4) == (try Self.lines(file, 0, 2) + Self.lines(file, 2, 4)))
        let all = try Self.lines(file, 0, 4)
        #expect(all == [Record("one"), Record("two\rthree"), Record(""), Record("last\r")])
    }

    /// Ranges that start past the first sparse entry are found through the index, not by scanning from the top.
    @Test func theSparseIndexFindsEveryStride() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/big.txt"
        let count = IndexedFile.stride * 2 + 3
        try (0..<count).map { "line \($0)\n" }.joined().write(toFile: path, atomically: false, encoding: .utf8)
        let file = try IndexedFile.index(path: path, firstOffset: 0)
        #expect(file.lineCount == UInt64(count))
        #expect(file.sparse.count == 3)
        let from = IndexedFile.stride * 2 - 1
        #expect(try Self.lines(file, from, from + 3) == (from..<(from + 3)).map { Record("line \($0)") })
    }

    @Test func aFileCutShortAfterIndexingIsAnError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/a.txt"
        try "a\nb\nc\n".write(toFile: path, atomically: false, encoding: .utf8)
        let file = try IndexedFile.index(path: path, firstOffset: 0)
        try "a\n".write(toFile: path, atomically: false, encoding: .utf8)
        let error = #expect(throws: FileWatchError.self) { _ = try Self.lines(file, 0, 3) }
        #expect(error?.description.contains("changed after it was indexed") == true)
    }
}
