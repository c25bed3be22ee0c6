/// The `count` (1...8) bytes at `p` as a little-endian integer, zero-extended: one load, no byte loop.
///
/// Hashing, comparing and copying words of a few bytes a byte at a time costs a loop whose trip count changes with
/// every word, and its mispredicted exits cost more than the bytes. This load is eight bytes wide, so it reaches past
/// the `count` bytes: forward when the eight bytes lie in `p`'s page, otherwise backward, ending at the last byte
/// wanted. Either way it stays in a page that holds bytes at `p`, so it cannot fault, and the bytes that are not
/// wanted are masked or shifted away.
@inlinable @inline(__always)
public func loadBytes(_ p: UnsafeRawPointer, count: Int) -> UInt64 {
    let unused = UInt64(truncatingIfNeeded: 64 &- 8 &* count)
    if UInt(bitPattern: p) & 4095 <= 4096 - 8 {
        return UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)) & (UInt64.max >> unused)
    }
    return UInt64(littleEndian: p.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)) >> unused
}
