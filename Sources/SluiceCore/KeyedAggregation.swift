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
    /// A custom reducer's values waiting to be combined, and the table entry (group) of each.
    private var pendingValues: [UInt64] = []
    private var pendingGroups: [Int32] = []
    /// Scratch for `KeyTable.countValues`: the hashes of a block of values.
    private var hashes: [UInt64] = []

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
            if batch.hasKeys {
                // Keyed records are counted whole, away from the word count's loops below.
                for i in 0..<batch.count { countedValue(batch, i) { counts.add($0, amount: 1) } }
                return
            }
            if batch.valueType == .int64 {
                for i in 0..<batch.count {
                    var text = String(batch.int64Value(at: i))
                    text.withUTF8 { counts.add(UnsafeRawBufferPointer($0), amount: 1) }
                }
            } else {
                counts.countValues(of: batch, hashes: &hashes)
            }
            return
        }
        guard let table = accumulators else { return }
        if let type = op.customType {
            collect(batch, into: table, type)
            return
        }
        let function = op.function
        for i in 0..<batch.count {
            // Counting needs no value: skip parsing it.
            let value = function == .count ? ParsedValue.int(0) : ParsedValue.of(batch, at: i)
            guard let lifted = table.lift(value, function) else {
                discard("value '\(batch.valueString(at: i))' is not a number (\(function.rawValue) needs numbers)")
                continue
            }
            groupKey(batch, i) { key in
                table.upsert(key, hash: hashKey(key), initial: { lifted }, update: { table.combine(&$0, lifted, function) })
            }
        }
    }

    /// The key a record is grouped by, or nil (counted as discarded) when it has none.
    private func groupKey(_ batch: BatchView, _ i: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        switch op.kind.grouping {
        case .nothing:
            body(UnsafeRawBufferPointer(start: nil, count: 0))
        case .key:
            guard let key = batch.key(at: i) else {
                discard("a record has no key (\(op.kind.rawValue) needs keyed records, e.g. split with output: pairs)")
                return
            }
            body(key)
        case .value:
            countedValue(batch, i, body)
        }
    }

    /// The bytes of the record being counted, reused from record to record.
    private var recordText: [UInt8] = []

    /// What countByValue and countByValueAndWindow count for record `i`: the whole record as sinks show it (Spark
    /// counts whole elements, so `(x,1)` and `(y,1)` are different values where counting values would merge them):
    /// `(key,value)` for a keyed record, the value alone otherwise, an `int64` value in decimal.
    private func countedValue(_ batch: BatchView, _ i: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        let key = batch.key(at: i)
        if key == nil && batch.valueType == .bytes {
            body(batch.value(at: i))
            return
        }
        recordText.removeAll(keepingCapacity: true)
        if let key {
            recordText.append(UInt8(ascii: "("))
            recordText.append(contentsOf: key)
            recordText.append(UInt8(ascii: ","))
        }
        if batch.valueType == .int64 {
            var text = String(batch.int64Value(at: i))
            text.withUTF8 { recordText.append(contentsOf: $0) }
        } else {
            recordText.append(contentsOf: batch.value(at: i))
        }
        if key != nil { recordText.append(UInt8(ascii: ")")) }
        recordText.withUnsafeBytes(body)
    }

    /// A custom reducer's map side: remember each value under its key's entry; `finish()` combines them.
    private func collect(_ batch: BatchView, into table: KeyTable<Accumulator>, _ type: ReducerValueType) {
        for i in 0..<batch.count {
            guard let slot = type.slot(ParsedValue.of(batch, at: i)) else {
                let wanted = type == .int64 ? "an integer" : "a number"
                discard("value '\(batch.valueString(at: i))' is not \(wanted) (\(op.reducer.name) takes \(type.rawValue))")
                continue
            }
            groupKey(batch, i) { key in
                let entry = table.upsert(key, hash: hashKey(key), initial: { Accumulator(records: 0) }, update: { _ in })
                pendingGroups.append(Int32(entry))
                pendingValues.append(slot)
            }
        }
    }

    /// Combines what a custom reducer collected: a tree of batch calls.
    func finish() throws {
        guard let custom = op.custom, let table = accumulators, !pendingValues.isEmpty else { return }
        let (values, counts) = try treeReduce(pendingValues, groupOf: pendingGroups, groups: table.count, custom)
        for g in 0..<table.count where counts[g] > 0 {
            table.setValue(custom.valueType.accumulator(values[g], records: counts[g]), at: g)
        }
        pendingValues = []
        pendingGroups = []
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
