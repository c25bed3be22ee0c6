/// Received lines, numbered from `firstOffset` (0 when the source started without a write-ahead log; the log's first
/// retained offset with one), kept in chunks so that forgetting committed lines is cheap. Not thread-safe: the
/// source guards it with its mutex.
struct LineBuffer: Sendable {
    struct Chunk {
        var firstOffset: UInt64
        var data: [UInt8] = []
        /// End (exclusive) of each line in `data`.
        var ends: [Int] = []
        var endOffset: UInt64 { firstOffset + UInt64(ends.count) }
    }

    static let linesPerChunk = 65_536
    /// A chunk also ends once it holds this many bytes. Committed lines stay in memory until their whole chunk is
    /// committed, and the limits count only uncommitted lines, so a chunk's size is what the source may hold beyond
    /// `max_buffered_bytes`: with a line count alone, 65,536 lines of 16 KiB made a 1 GiB chunk, held in full while a
    /// slow pipeline committed it batch by batch.
    static let bytesPerChunk = 1 << 20
    private(set) var chunks: [Chunk]
    /// Lines below this offset are committed: held only until their whole chunk can go.
    private(set) var committed: UInt64
    /// The bytes of every held line.
    private(set) var bytes = 0

    init(firstOffset: UInt64 = 0) {
        chunks = [Chunk(firstOffset: firstOffset)]
        committed = firstOffset
    }

    /// The offsets still held.
    var range: Range<UInt64> { chunks[0].firstOffset..<chunks[chunks.count - 1].endOffset }
    var count: Int { Int(range.count) }

    /// Lines received and not committed yet: what the receiving thread's limits count. (Committed lines of a chunk
    /// not yet forgotten do not count, or a limit below a chunk's size would stop reading for good.)
    var pendingCount: Int { Int(range.upperBound - min(max(committed, range.lowerBound), range.upperBound)) }

    /// The bytes of the pending lines.
    var pendingBytes: Int {
        var committedBytes = 0
        for chunk in chunks where chunk.firstOffset < committed {
            if chunk.endOffset <= committed {
                committedBytes += chunk.data.count
            } else {
                let line = Int(committed - chunk.firstOffset)
                committedBytes += line == 0 ? 0 : chunk.ends[line - 1]
            }
        }
        return bytes - committedBytes
    }

    mutating func append(_ line: UnsafeRawBufferPointer) {
        if chunks[chunks.count - 1].ends.count >= Self.linesPerChunk || chunks[chunks.count - 1].data.count >= Self.bytesPerChunk {
            chunks.append(Chunk(firstOffset: chunks[chunks.count - 1].endOffset))
        }
        let last = chunks.count - 1
        chunks[last].data.append(contentsOf: line)
        chunks[last].ends.append(chunks[last].data.count)
        bytes += line.count
    }

    /// Marks the lines below `offset` committed and forgets whole chunks that lie entirely below it.
    mutating func forget(below offset: UInt64) {
        committed = max(committed, offset)
        while chunks.count > 1 && chunks[0].endOffset <= offset {
            bytes -= chunks[0].data.count
            chunks.removeFirst()
        }
    }

    /// Calls `body` with each line in `offsets`, in order. The range must lie within `range`.
    func forEach(in offsets: Range<UInt64>, _ body: (UnsafeRawBufferPointer) -> Void) {
        var offset = offsets.lowerBound
        var index = chunks.firstIndex { $0.endOffset > offset } ?? chunks.count
        while offset < offsets.upperBound && index < chunks.count {
            let chunk = chunks[index]
            chunk.data.withUnsafeBytes { bytes in
                while offset < offsets.upperBound && offset < chunk.endOffset {
                    let line = Int(offset - chunk.firstOffset)
                    let start = line == 0 ? 0 : chunk.ends[line - 1]
                    body(UnsafeRawBufferPointer(rebasing: bytes[start..<chunk.ends[line]]))
                    offset += 1
                }
            }
            index += 1
        }
    }
}
