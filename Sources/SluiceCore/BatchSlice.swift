import SluiceSDK

extension OwnedBatch {
    /// Records `range` of this batch as a batch of their own, without copying: the slice points into this batch's
    /// buffers and keeps it alive. The ABI allows it (`docs/abi.md` §6: `value_offsets[0]` need not be 0).
    ///
    /// `range.lowerBound` must be a multiple of 8 when the batch has a key validity bitmap, which a slice shares
    /// from the byte that holds the first record's bit.
    func slice(_ range: Range<Int>) -> OwnedBatch {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice \(range) of a batch of \(count)")
        if range.lowerBound == 0 && range.upperBound == count { return self }
        let start = range.lowerBound
        var sliced = raw
        sliced.count = UInt64(range.count)
        sliced.release = nil
        sliced.private_data = nil
        if let offsets = raw.value_offsets {
            sliced.value_offsets = offsets + start
        } else if let data = raw.value_data {
            // Fixed-width values: the slice starts at its first value, and holds exactly its values.
            sliced.value_data = data + start * 8
            sliced.value_data_len = UInt64(range.count * 8)
        }
        if let offsets = raw.key_offsets { sliced.key_offsets = offsets + start }
        if let validity = raw.key_validity {
            precondition(start % 8 == 0, "a slice of a batch with a key validity bitmap must start at a multiple of 8")
            sliced.key_validity = validity + start / 8
        }
        if let timestamps = raw.timestamps { sliced.timestamps = timestamps + start }
        return OwnedBatch(taking: sliced, dependencies: [self])
    }
}
