import SluiceSDK

/// The partial aggregates of one keyed stage in one task (Spark's map-side combine): one table for all keys; the
/// keyed stage's partition `p` later takes the keys whose hash maps to `p` from every task's table.
final class KeyedPartials {
    let operation: KeyedOperation
    let table: ByteKeyTable
    /// Records that could not be aggregated (no key, or a value that is not an integer).
    var discarded = 0
    var firstDiscardReason: String?

    init(operation: KeyedOperation, expectedKeys: Int) {
        self.operation = operation
        table = ByteKeyTable(expectedKeys: expectedKeys)
    }

    /// Folds a batch into the partial table.
    func add(_ batch: BatchView) {
        let table = self.table
        switch operation {
        case .countByValue:
            if batch.valueType == .int64 {
                for i in 0..<batch.count {
                    var text = String(batch.int64Value(at: i))
                    text.withUTF8 { table.add(UnsafeRawBufferPointer($0), amount: 1) }
                }
            } else {
                for i in 0..<batch.count { table.add(batch.value(at: i), amount: 1) }
            }
        case .reduceByKey:
            for i in 0..<batch.count {
                guard let key = batch.key(at: i) else {
                    discard("a record has no key (reduceByKey needs keyed records, e.g. split with output: pairs)")
                    continue
                }
                let amount: Int64
                if batch.valueType == .int64 {
                    amount = batch.int64Value(at: i)
                } else if let parsed = parseInteger(batch.value(at: i)) {
                    amount = parsed
                } else {
                    discard("value '\(batch.valueString(at: i))' of key '\(batch.keyString(at: i) ?? "")' is not an integer")
                    continue
                }
                table.add(key, amount: amount)
            }
        }
    }

    private func discard(_ reason: String) {
        discarded += 1
        if firstDiscardReason == nil { firstDiscardReason = reason }
    }
}

/// Parses an optionally signed decimal integer; nil when the bytes are anything else or overflow.
func parseInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
    var index = 0
    var negative = false
    if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
        negative = first == UInt8(ascii: "-")
        index = 1
    }
    guard index < bytes.count else { return nil }
    var value: Int64 = 0
    while index < bytes.count {
        let digit = bytes[index] &- UInt8(ascii: "0")
        guard digit < 10 else { return nil }
        let (times10, o1) = value.multipliedReportingOverflow(by: 10)
        let (sum, o2) = times10.addingReportingOverflow(Int64(digit))
        guard !o1 && !o2 else { return nil }
        value = sum
        index += 1
    }
    return negative ? -value : value
}
