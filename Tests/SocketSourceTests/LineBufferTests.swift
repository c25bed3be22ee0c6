import Testing

@testable import SocketSource

struct LineBufferTests {
    static func lines(_ buffer: LineBuffer, _ offsets: Range<UInt64>) -> [String] {
        var lines: [String] = []
        buffer.forEach(in: offsets) { lines.append(String(decoding: $0, as: UTF8.self)) }
        return lines
    }

    static func append(_ text: String, to buffer: inout LineBuffer) {
        Array(text.utf8).withUnsafeBytes { buffer.append($0) }
    }

    @Test func offsetsStartWhereTheBufferStarts() {
        var buffer = LineBuffer(firstOffset: 40)
        for line in ["a", "", "c"] { Self.append(line, to: &buffer) }
        #expect(buffer.range == 40..<43)
        #expect(Self.lines(buffer, 40..<43) == ["a", "", "c"])
        #expect(Self.lines(buffer, 41..<43) == ["", "c"])
    }

    /// Forgetting drops whole chunks below the offset only, so every line at or after it stays readable.
    @Test func forgettingKeepsEveryLineAtOrAfterTheOffset() {
        var buffer = LineBuffer()
        let total = LineBuffer.linesPerChunk * 2 + 10
        for i in 0..<total { Self.append("\(i)", to: &buffer) }
        #expect(buffer.chunks.count == 3)
        buffer.forget(below: UInt64(LineBuffer.linesPerChunk + 5))
        #expect(buffer.chunks.count == 2)
        #expect(buffer.range == UInt64(LineBuffer.linesPerChunk)..<UInt64(total))
        let from = UInt64(LineBuffer.linesPerChunk - 1 + 6)
        #expect(Self.lines(buffer, from..<(from + 2)) == ["\(from)", "\(from + 1)"])
        #expect(Self.lines(buffer, UInt64(total - 1)..<UInt64(total)) == ["\(total - 1)"])
    }
}
