/// Cuts the bytes of one connection into lines, by the rule the file-watch source follows too (docs/pipeline.md,
/// "Line endings"): a line ends at `\n`, or where the connection ends; one `\r` directly before the `\n` is removed;
/// any other `\r` is data. A line longer than `maxLineBytes` is cut to its first `maxLineBytes` bytes, which are
/// emitted as soon as they are known; the rest is skipped, but counted, so that the report gives the real length.
struct LineSplitter {
    let maxLineBytes: Int
    /// The start of a line whose end has not arrived yet.
    private var partial: [UInt8] = []
    /// The bytes so far of a line that was cut (its first `maxLineBytes` bytes already emitted), nil otherwise.
    private var cutLength: Int?
    /// Whether the last byte counted in `cutLength` is a `\r` (which is not part of the line if `\n` follows).
    private var cutEndsInReturn = false

    init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    /// Calls `line` with each line completed by `bytes`, and `cut` with the real length of each line that was cut.
    mutating func split(_ bytes: UnsafeRawBufferPointer, line: (UnsafeRawBufferPointer) -> Void, cut: (Int) -> Void) {
        var start = 0
        while start < bytes.count {
            guard let newline = bytes[start...].firstIndex(of: 10) else {
                take(UnsafeRawBufferPointer(rebasing: bytes[start...]), line: line)
                return
            }
            let piece = UnsafeRawBufferPointer(rebasing: bytes[start..<newline])
            start = newline + 1
            if let length = cutLength {
                let endsInReturn = piece.isEmpty ? cutEndsInReturn : piece.last == 13
                cut(length + piece.count - (endsInReturn ? 1 : 0))
                cutLength = nil
            } else if partial.isEmpty {
                emit(piece, terminated: true, line: line, cut: cut)  // the common case: no copy
            } else {
                partial.append(contentsOf: piece)
                partial.withUnsafeBytes { emit($0, terminated: true, line: line, cut: cut) }
                partial.removeAll(keepingCapacity: true)
            }
        }
    }

    /// The connection ended: a last line without a newline is still a line (a `\r` at its end is data).
    mutating func finish(line: (UnsafeRawBufferPointer) -> Void, cut: (Int) -> Void) {
        if let length = cutLength {
            cut(length)
        } else if !partial.isEmpty {
            partial.withUnsafeBytes { emit($0, terminated: false, line: line, cut: cut) }
        }
        cutLength = nil
        partial.removeAll()
    }

    /// Keeps the start of a line; once it is certainly too long, emits its first `maxLineBytes` bytes. (One byte more
    /// than the limit may still be the `\r` of a line of exactly `maxLineBytes`.)
    private mutating func take(_ bytes: UnsafeRawBufferPointer, line: (UnsafeRawBufferPointer) -> Void) {
        if let length = cutLength {
            cutLength = length + bytes.count
            cutEndsInReturn = bytes.last == 13
            return
        }
        partial.append(contentsOf: bytes)
        if partial.count - 1 > maxLineBytes {  // (not `maxLineBytes + 1`, which overflows for Int.max)
            partial.withUnsafeBytes { line(UnsafeRawBufferPointer(rebasing: $0.prefix(maxLineBytes))) }
            cutLength = partial.count
            cutEndsInReturn = partial.last == 13
            partial.removeAll(keepingCapacity: true)
        }
    }

    private func emit(_ raw: UnsafeRawBufferPointer, terminated: Bool, line: (UnsafeRawBufferPointer) -> Void, cut: (Int) -> Void) {
        let content = terminated && raw.last == 13 ? UnsafeRawBufferPointer(rebasing: raw.dropLast()) : raw
        if content.count > maxLineBytes {
            line(UnsafeRawBufferPointer(rebasing: content.prefix(maxLineBytes)))
            cut(content.count)
        } else {
            line(content)
        }
    }
}
