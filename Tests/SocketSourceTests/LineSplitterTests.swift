import Testing

@testable import SocketSource

/// The line rule shared with the file-watch source (docs/pipeline.md, "Line endings"), fed in arbitrary pieces.
struct LineSplitterTests {
    /// Splits `pieces` (as if received one after another) and returns the lines and the lengths of cut lines.
    static func split(_ pieces: [String], maxLineBytes: Int = 1 << 20) -> (lines: [String], cuts: [Int]) {
        var splitter = LineSplitter(maxLineBytes: maxLineBytes)
        var lines: [String] = []
        var cuts: [Int] = []
        let line = { (bytes: UnsafeRawBufferPointer) in lines.append(String(decoding: bytes, as: UTF8.self)) }
        for piece in pieces {
            Array(piece.utf8).withUnsafeBytes { splitter.split($0, line: line, cut: { cuts.append($0) }) }
        }
        splitter.finish(line: line, cut: { cuts.append($0) })
        return (lines, cuts)
    }

    @Test func linesEndAtNewlinesAndOneCarriageReturnBeforeOneIsRemoved() {
        #expect(Self.split(["a\nb\r\nc\rd\n"]).lines == ["a", "b", "c\rd"])
    }

    @Test func aLineSplitAcrossReadsIsJoined() {
        #expect(Self.split(["he", "llo\r", "\nwor", "ld\n"]).lines == ["hello", "world"])
    }

    @Test func aLastLineWithoutNewlineIsKeptWithItsCarriageReturn() {
        #expect(Self.split(["a\nlast\r"]).lines == ["a", "last\r"])
    }

    @Test func aLongLineIsCutAndItsRealLengthReported() {
        let result = Self.split(["0123", "456789\nok\n"], maxLineBytes: 4)
        #expect(result.lines == ["0123", "ok"])
        #expect(result.cuts == [10])
    }

    /// A line of exactly the limit followed by `\r\n` is not cut.
    @Test func aLineOfExactlyTheLimitIsWhole() {
        let result = Self.split(["abcd\r", "\n"], maxLineBytes: 4)
        #expect(result.lines == ["abcd"])
        #expect(result.cuts.isEmpty)
    }
}
