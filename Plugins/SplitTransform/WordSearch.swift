import CSeparatorMask

/// Up to four separator bytes, searched for 64 bytes at a time (`sluice_separator_mask64`).
struct WordSearch {
    let a: UInt8
    let b: UInt8
    let c: UInt8
    let d: UInt8

    /// Nil for more than four separators (the byte-table loop does it all then). Fewer are padded with the first
    /// (testing one twice changes nothing).
    init?(_ separators: [UInt8]) {
        guard let head = separators.first, separators.count <= 4 else { return nil }
        let padded = separators + Array(repeating: head, count: 4 - separators.count)
        (a, b, c, d) = (padded[0], padded[1], padded[2], padded[3])
    }

    /// Bit i is set when byte i of the 64 at `p` is a separator. Reads all 64 bytes.
    @inline(__always)
    func mask(_ p: UnsafePointer<UInt8>) -> UInt64 {
        sluice_separator_mask64(p, a, b, c, d)
    }
}
