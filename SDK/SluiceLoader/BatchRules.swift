import CSluice

/// The rules of docs/abi.md §6 for a batch that a plugin hands to the host (a transform's output, a source's read).
///
/// The host checks every such batch before anything else reads it, so that a malformed batch is reported against
/// the plugin that made it instead of crashing, or failing in, the next stage. The conformance checker
/// (`sluice plugins check`) applies the same function. The cost is one pass over the offsets, eight at a time: a
/// record at a time it was 2 % of the word count's CPU, for `split`'s 16 million words.
public enum BatchRules {
    /// The size of an ABI 1.0 `sluice_batch` (96 bytes): the smallest `struct_size` the host accepts.
    public static let minimumSize = Int(SLUICE_BATCH_SIZE_1_0)

    /// The first rule `batch` breaks, phrased to follow "a batch whose ", or nil when it is well formed.
    /// - Parameter expectedCount: for a source's `read`, the number of offsets that were asked for.
    public static func violation(in batch: sluice_batch, expectedCount: UInt64? = nil) -> String? {
        if Int(batch.struct_size) < minimumSize {
            return "struct_size = \(batch.struct_size) is less than the \(minimumSize) bytes of an ABI 1.0 batch"
        }
        let count = batch.count
        if let expectedCount, count != expectedCount {
            return "count = \(count) differs from the \(expectedCount) offsets asked for"
        }
        // Offsets are 32-bit, so more records than that cannot be addressed; it also keeps the loops below in Int.
        if count >= UInt64(UInt32.max) { return "count = \(count) is not a plausible number of records" }
        switch batch.value_type {
        case SLUICE_VALUE_BYTES:
            if let problem = offsetViolation(
                batch.value_offsets, batch.value_data, batch.value_data_len, count: count, column: "value"
            ) {
                return problem
            }
        case SLUICE_VALUE_INT64:
            if batch.value_offsets != nil { return "value_offsets is not NULL, but an INT64 batch has no offsets" }
            let (needed, overflow) = count.multipliedReportingOverflow(by: 8)
            if overflow || batch.value_data_len < needed {
                return "value_data_len = \(batch.value_data_len) is less than 8 × count = \(count) × 8"
            }
            if count > 0 {
                guard let data = batch.value_data else { return "value_data is NULL but count = \(count)" }
                if UInt(bitPattern: data) % 8 != 0 { return "value_data (INT64) is not 8-byte aligned" }
            }
        default:
            return "value_type = \(batch.value_type) is unknown (SLUICE_VALUE_BYTES = 0, SLUICE_VALUE_INT64 = 1)"
        }
        if batch.key_offsets != nil,
            let problem = offsetViolation(batch.key_offsets, batch.key_data, batch.key_data_len, count: count, column: "key")
        {
            return problem
        }
        // An empty batch owns nothing, so the host accepts a zeroed one; records need someone to free them.
        if count > 0 && batch.release == nil {
            return "release is NULL but count = \(count) (a batch with records needs a release, even one that frees nothing)"
        }
        return nil
    }

    /// Whether any of `offsets[1...n]` is less than the offset before it.
    private static func decreases(_ offsets: UnsafePointer<UInt32>, _ n: Int) -> Bool {
        let raw = UnsafeRawPointer(offsets)
        var found = SIMDMask<SIMD8<Int32>>(repeating: false)
        var i = 1
        while i &+ 8 <= n &+ 1 {
            let next = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<UInt32>.self)
            let previous = raw.loadUnaligned(fromByteOffset: (i &- 1) &* 4, as: SIMD8<UInt32>.self)
            found .|= next .< previous
            i &+= 8
        }
        var tail = false
        while i <= n {
            tail = tail || offsets[i] < offsets[i &- 1]
            i &+= 1
        }
        return tail || any(found)
    }

    /// The offset rules shared by the value and key columns: count + 1 non-decreasing offsets inside the data.
    private static func offsetViolation(
        _ offsets: UnsafePointer<UInt32>?,
        _ data: UnsafePointer<UInt8>?,
        _ length: UInt64,
        count: UInt64,
        column: String
    ) -> String? {
        if length > 0 && data == nil { return "\(column)_data is NULL but \(column)_data_len = \(length)" }
        guard let offsets else {
            // A BYTES batch without records may leave every pointer NULL.
            return count == 0 ? nil : "\(column)_offsets is NULL but count = \(count)"
        }
        let n = Int(count)
        // Every batch a plugin returns passes here (a split's 16 million words in the word count): first a test
        // of eight offsets at a time against the eight before them, without early exits, and only when it finds a
        // decrease the loop that says where.
        if !decreases(offsets, n) && UInt64(offsets[n]) <= length { return nil }
        var previous = offsets[0]
        for i in stride(from: 1, through: n, by: 1) {
            let offset = offsets[i]
            if offset < previous {
                return "\(column)_offsets[\(i)] = \(offset) is less than \(column)_offsets[\(i - 1)] = \(previous)"
            }
            previous = offset
        }
        if UInt64(previous) > length {
            return "\(column)_offsets[\(n)] = \(previous) is past the end of \(column)_data (\(column)_data_len = \(length))"
        }
        return nil
    }
}
