import Foundation
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

    /// A chunk also ends at `bytesPerChunk`: with long lines, forgetting the committed ones frees memory a megabyte
    /// at a time instead of once 65,536 of them (a gigabyte of 16 KiB lines) are committed, and every line stays
    /// readable across the chunk boundaries.
    @Test func longLinesEndAChunkAtItsByteSize() {
        var buffer = LineBuffer()
        let line = String(repeating: "x", count: 16 * 1024 - 6)
        let total = 200  // 3.1 MiB
        for i in 0..<total { Self.append(String(format: "%05d", i) + line, to: &buffer) }
        // A chunk takes lines until it holds the byte size, so every full chunk ends within one line past it.
        let lineBytes = line.utf8.count + 5
        #expect(buffer.chunks.count == 4, "\(buffer.chunks.map(\.ends.count))")
        #expect(buffer.chunks.dropLast().allSatisfy { (LineBuffer.bytesPerChunk..<(LineBuffer.bytesPerChunk + lineBytes)).contains($0.data.count) })
        buffer.forget(below: 150)
        #expect(buffer.chunks.reduce(0) { $0 + $1.data.count } <= (total - 150) * 16 * 1024 + LineBuffer.bytesPerChunk)
        #expect(Self.lines(buffer, 149..<151).map { String($0.prefix(5)) } == ["00149", "00150"])
        #expect(Self.lines(buffer, UInt64(total - 1)..<UInt64(total)).map { String($0.prefix(5)) } == ["00199"])
    }

    /// The limits count what waits for a commit: committed lines still held in a chunk count for nothing, lines or
    /// bytes.
    @Test func pendingLinesAndBytesLeaveOutCommittedOnes() {
        var buffer = LineBuffer(firstOffset: 10)
        for line in ["aaaa", "bb", "cccccc", "d"] { Self.append(line, to: &buffer) }
        #expect(buffer.pendingCount == 4 && buffer.pendingBytes == 13)
        buffer.forget(below: 12)
        #expect(buffer.range == 10..<14, "one chunk, kept whole")
        #expect(buffer.pendingCount == 2 && buffer.pendingBytes == 7)
        buffer.forget(below: 14)
        #expect(buffer.pendingCount == 0 && buffer.pendingBytes == 0)
        Self.append("eee", to: &buffer)
        #expect(buffer.pendingCount == 1 && buffer.pendingBytes == 3)

        var chunks = LineBuffer()
        for i in 0..<(LineBuffer.linesPerChunk + 3) { Self.append(i < LineBuffer.linesPerChunk ? "xx" : "yyy", to: &chunks) }
        chunks.forget(below: UInt64(LineBuffer.linesPerChunk + 1))
        #expect(chunks.chunks.count == 1)
        #expect(chunks.pendingCount == 2 && chunks.pendingBytes == 6)
    }
}
