/// Up to four separators, each repeated in all eight bytes of a word, to find them eight bytes at a time.
struct WordSearch {
    let first: UInt64
    let second: UInt64
    let third: UInt64
    let fourth: UInt64
    let four: Bool

    /// Nil for more than four separators. Fewer are padded with the first (testing one twice changes nothing).
    init?(_ separators: [UInt8]) {
        guard let head = separators.first, separators.count <= 4 else { return nil }
        let patterns = (separators + Array(repeating: head, count: 4 - separators.count)).map { UInt64($0) &* 0x0101_0101_0101_0101 }
        (first, second, third, fourth) = (patterns[0], patterns[1], patterns[2], patterns[3])
        four = separators.count > 2
    }

    /// The top bit of every byte of `word` that is a separator, and no other bit.
    @inline(__always)
    func matches(_ word: UInt64) -> UInt64 {
        var found = Self.zeroBytes(word ^ first) | Self.zeroBytes(word ^ second)
        if four { found |= Self.zeroBytes(word ^ third) | Self.zeroBytes(word ^ fourth) }
        return found
    }

    /// The top bit of each zero byte of `x`: exact, with no borrow between bytes (unlike `(x - 0x01..) & ~x`).
    @inline(__always)
    static func zeroBytes(_ x: UInt64) -> UInt64 {
        let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        return ~(((x & low7) &+ low7) | x | low7)
    }
}
