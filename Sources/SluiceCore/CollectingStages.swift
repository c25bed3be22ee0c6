import SluiceSDK

/// A stage that needs every record of its input(s) in the batch, as records rather than aggregates: `window`,
/// `groupByKey`, the joins, `cogroup` and `repartition`. The executor collects the chunks that reach it from every
/// task (in task order, each tagged with the input it came from) and runs the stage once the tasks are done.
public protocol CollectingStage: AnyObject, Sendable {
    /// How many tasks run the stage (and so run the narrow stages after it) in parallel.
    var partitions: Int { get }
    /// The output of partition `p` for batch `id`, given every chunk of the batch. Called for every partition of a
    /// batch, in parallel; `finish(batch:)` follows once all have returned.
    func run(partition p: Int, chunks: [CollectedChunk], id: UInt64) throws -> [OwnedBatch]
    /// Called once per batch after every partition has run.
    func finish(batch id: UInt64)
    /// Records of the last batch the stage could not use (say, without a key), and why.
    var discardedInLastBatch: (count: Int, reason: String?) { get }
}

extension CollectingStage {
    public func finish(batch id: UInt64) {}
    public var discardedInLastBatch: (count: Int, reason: String?) { (0, nil) }
}

/// A chunk of records that reached a collecting stage, and which of its inputs (0, 1, ...) it came from.
public struct CollectedChunk: Sendable {
    public var input: Int
    public var batch: OwnedBatch
    public init(input: Int, batch: OwnedBatch) {
        self.input = input
        self.batch = batch
    }
}

// MARK: - window

/// Spark's `window(length, slide)`: every slide, all records of the last `length` batches. Keeps the batches of the
/// window (records, not aggregates); emits nothing between slides.
public final class WindowStage: CollectingStage, @unchecked Sendable {  // the ring is touched by one task per batch
    public let window: Int
    public let slide: Int
    public let partitions = 1
    private var ring: [[OwnedBatch]] = []

    /// - Parameters: window, slide: in batches.
    public init(window: Int, slide: Int) {
        precondition(window >= 1 && slide >= 1)
        self.window = window
        self.slide = slide
    }

    public func run(partition p: Int, chunks: [CollectedChunk], id: UInt64) throws -> [OwnedBatch] {
        ring.append(chunks.map(\.batch).filter { $0.count > 0 })
        if ring.count > window { ring.removeFirst(ring.count - window) }
        guard (id + 1) % UInt64(slide) == 0 else { return [] }
        return ring.flatMap { $0 }
    }

    /// What defines the window's state.
    public var fingerprint: String { "window(window=\(window),slide=\(slide))" }

    /// The records the window holds: it keeps records, not keys, so this is its `StatefulStage.stateKeys`.
    public var stateKeys: Int { ring.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }

    /// The bytes of the records the window holds: values, keys, their offsets and timestamps. From each batch's
    /// lengths, not its records: a few additions per batch.
    public var stateBytes: Int {
        ring.reduce(0) { total, batches in
            batches.reduce(total) { total, batch in
                let raw = batch.raw
                let count = Int(raw.count)
                var bytes = Int(raw.value_data_len) + Int(raw.key_data_len)
                if raw.value_offsets != nil { bytes += (count + 1) * MemoryLayout<UInt32>.stride }
                if raw.key_offsets != nil { bytes += (count + 1) * MemoryLayout<UInt32>.stride }
                if raw.key_validity != nil { bytes += (count + 7) / 8 }
                if raw.timestamps != nil { bytes += count * MemoryLayout<Int64>.stride }
                return total + bytes
            }
        }
    }

    static let snapshotMagic = Array("SLWINDOW".utf8)

    /// The records of every batch in the window, in a versioned format tagged with the fingerprint.
    public func snapshot() -> [UInt8] {
        var out = SnapshotWriter()
        out.bytes(Self.snapshotMagic)
        out.string(fingerprint)
        out.u32(UInt32(ring.count))
        for batches in ring {
            out.u32(UInt32(batches.count))
            for batch in batches { out.records(batch.view) }
        }
        return out.data
    }

    /// Replaces the window's batches with a snapshot taken by a window of the same fingerprint.
    public func restore(_ snapshot: [UInt8]) throws(SnapshotError) {
        var input = SnapshotReader(snapshot)
        guard try input.bytes(Self.snapshotMagic.count) == Self.snapshotMagic else {
            throw SnapshotError("not a Sluice window snapshot (bad magic)")
        }
        let found = try input.string()
        guard found == fingerprint else { throw SnapshotError("the snapshot is of \(found), this stage is \(fingerprint)") }
        var restored: [[OwnedBatch]] = []
        for _ in 0..<Int(try input.u32()) {
            var batches: [OwnedBatch] = []
            for _ in 0..<Int(try input.u32()) { batches.append(try input.records()) }
            restored.append(batches)
        }
        guard input.atEnd else { throw SnapshotError("\(input.remaining) unexpected bytes after the window") }
        ring = restored
    }
}

// MARK: - repartition

/// Spark's `repartition(n)`: the batch's records spread evenly over `n` tasks, so the stages after it run `n`-way
/// parallel whatever the partitioning before.
public final class RepartitionStage: CollectingStage {
    public let partitions: Int

    public init(partitions: Int) {
        precondition(partitions >= 1)
        self.partitions = partitions
    }

    public func run(partition p: Int, chunks: [CollectedChunk], id: UInt64) throws -> [OwnedBatch] {
        let total = chunks.reduce(0) { $0 + $1.batch.count }
        // Partition p takes the records [p * total / n, (p + 1) * total / n) of the batch, in order.
        let start = p * total / partitions
        let end = (p + 1) * total / partitions
        guard end > start else { return [] }
        let first = chunks.first { $0.batch.count > 0 }?.batch.view
        var builder = BatchBuilder(
            valueType: first?.valueType ?? .bytes,
            keyed: chunks.contains { $0.batch.view.hasKeys },
            timestamps: chunks.allSatisfy { $0.batch.count == 0 || $0.batch.view.hasTimestamps },
            expectedCount: end - start
        )
        var position = 0
        for chunk in chunks {
            let view = chunk.batch.view
            let from = max(start - position, 0)
            let to = min(end - position, view.count)
            if from < to { copyRecords(view, from..<to, into: &builder) }
            position += view.count
            if position >= end { break }
        }
        return [OwnedBatch(builder)]
    }
}

/// Appends records `range` of `view` to `builder`, keys and timestamps included where both have them.
public func copyRecords(_ view: BatchView, _ range: Range<Int>, into builder: inout BatchBuilder) {
    for i in range {
        let key = builder.hasKeys ? view.key(at: i) : nil
        switch (view.valueType, builder.valueType) {
        case (.int64, .int64):
            if let key { builder.append(key: key, value: view.int64Value(at: i)) } else { builder.append(view.int64Value(at: i)) }
        case (.bytes, .bytes):
            if let key { builder.append(key: key, value: view.value(at: i)) } else { builder.append(view.value(at: i)) }
        default:
            var text = view.valueString(at: i)
            text.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                if let key { builder.append(key: key, value: bytes) } else { builder.append(bytes) }
            }
        }
        if builder.hasTimestamps, let t = view.timestamp(at: i) { builder.setLastTimestamp(t) }
    }
}

// MARK: - groupByKey, joins, cogroup

/// Spark's `groupByKey`, `join`, `leftOuterJoin`, `rightOuterJoin`, `fullOuterJoin` and `cogroup` over the records
/// of one batch (or of one slide of windowed inputs), hash-partitioned by key.
///
/// What a key's result looks like is the `GroupOutput`'s business: Spark's text by default (`SparkTextGroupOutput`),
/// typed values in the Swift API.
public final class GroupStage: CollectingStage, @unchecked Sendable {  // `keyless` is written by partition 0 only
    public enum Kind: String, Sendable, CaseIterable {
        case groupByKey, join, leftOuterJoin, rightOuterJoin, fullOuterJoin, cogroup

        /// How many input streams the operation reads.
        public var inputs: Int { self == .groupByKey ? 1 : 2 }
    }

    public let kind: Kind
    public let partitions: Int
    public let output: any GroupOutput
    /// Records of the last batch without a key (counted by partition 0, which sees every record).
    private var keyless = 0

    /// Records without a key, and those the output could not read (if it is `DiscardReporting`).
    public var discardedInLastBatch: (count: Int, reason: String?) {
        let unread: (count: Int, reason: String?) = (output as? any DiscardReporting)?.takeDiscarded() ?? (0, nil)
        let reason = keyless > 0 ? "a record has no key (\(kind.rawValue) needs keyed records)" : unread.reason
        return (keyless + unread.count, reason)
    }

    /// - Parameter output: how a key's result is written; Spark's text by default.
    public init(_ kind: Kind, partitions: Int, output: any GroupOutput = SparkTextGroupOutput()) {
        precondition(partitions >= 1)
        self.kind = kind
        self.partitions = partitions
        self.output = output
    }

    public func run(partition p: Int, chunks: [CollectedChunk], id: UInt64) throws -> [OwnedBatch] {
        let groups = KeyTable<Int32>(expectedKeys: 64)
        var sides: [[[(chunk: Int32, index: Int32)]]] = []  // group -> side -> records
        if p == 0 { keyless = 0 }
        for (c, chunk) in chunks.enumerated() {
            let view = chunk.batch.view
            let side = min(chunk.input, kind.inputs - 1)
            for i in 0..<view.count {
                guard let key = view.key(at: i) else {
                    if p == 0 { keyless += 1 }
                    continue
                }
                let hash = hashKey(key)
                if partitions > 1 && hashPartition(hash, partitions) != p { continue }
                let next = Int32(sides.count)
                let group = Int(groups.value(at: groups.upsert(key, hash: hash, initial: { next }, update: { _ in })))
                if group == sides.count { sides.append(Array(repeating: [], count: kind.inputs)) }
                sides[group][side].append((Int32(c), Int32(i)))
            }
        }
        let views = chunks.map(\.batch.view)
        var builder = BatchBuilder(keyed: true, expectedCount: sides.count)
        groups.forEachIndex { entry in
            let group = sides[Int(groups.value(at: entry))]
            output.write(kind, key: groups.key(at: entry), sides: group.map { KeyedValues(chunks: views, refs: $0[...]) }, into: &builder)
        }
        return [OwnedBatch(builder)]
    }
}
