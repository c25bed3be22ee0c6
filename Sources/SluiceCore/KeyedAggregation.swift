import SluiceSDK

/// The partial aggregates of one keyed stage in one task (Spark's map-side combine): one table for all keys; the
/// keyed stage's partition `p` later takes the keys whose hash maps to `p` from every task's table.
///
/// The plain `countByValue` (the word count) keeps bare counts; every other operator keeps an ``Accumulator`` per
/// key.
final class KeyedPartials {
    let op: KeyedOperator
    let counts: KeyTable<Int64>?
    let accumulators: KeyTable<Accumulator>?
    /// Records that could not be aggregated (no key, or a value the function cannot use).
    var discarded = 0
    var firstDiscardReason: String?

    init(op: KeyedOperator, expectedKeys: Int) {
        self.op = op
        if op.isPlainCountByValue {
            counts = KeyTable<Int64>(expectedKeys: expectedKeys)
            accumulators = nil
        } else {
            counts = nil
            accumulators = KeyTable<Accumulator>(expectedKeys: expectedKeys)
        }
    }

    /// The number of distinct keys so far.
    var keyCount: Int { counts?.count ?? accumulators?.count ?? 0 }

    /// Folds a batch into the partial table.
    func add(_ batch: BatchView) {
        if let counts {
            if batch.valueType == .int64 {
                for i in 0..<batch.count {
                    var text = String(batch.int64Value(at: i))
                    text.withUTF8 { counts.add(UnsafeRawBufferPointer($0), amount: 1) }
                }
            } else {
                for i in 0..<batch.count { counts.add(batch.value(at: i), amount: 1) }
            }
            return
        }
        guard let table = accumulators else { return }
        let function = op.function
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        for i in 0..<batch.count {
            let value = ParsedValue.of(batch, at: i)
            guard let lifted = table.lift(value, function) else {
                discard("value '\(batch.valueString(at: i))' is not a number (\(function.rawValue) needs numbers)")
                continue
            }
            let fold = { (key: UnsafeRawBufferPointer) -> Void in
                table.upsert(key, hash: hashKey(key), initial: { lifted }, update: { table.combine(&$0, lifted, function) })
            }
            switch op.kind.grouping {
            case .nothing:
                fold(empty)
            case .key:
                guard let key = batch.key(at: i) else {
                    discard("a record has no key (\(op.kind.rawValue) needs keyed records, e.g. split with output: pairs)")
                    continue
                }
                fold(key)
            case .value:
                if batch.valueType == .int64 {
                    var text = String(batch.int64Value(at: i))
                    text.withUTF8 { fold(UnsafeRawBufferPointer($0)) }
                } else {
                    fold(batch.value(at: i))
                }
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
