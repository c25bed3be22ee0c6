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
/// Values are rendered as text the way Spark prints them: a join's value is `(v,w)`, an outer join's missing side
/// `None` and its present side `Some(x)`, a group `[v1,v2]`, a cogroup `([v1,v2],[w1])`.
public final class GroupStage: CollectingStage, @unchecked Sendable {  // `keyless` is written by partition 0 only
    public enum Kind: String, Sendable, CaseIterable {
        case groupByKey, join, leftOuterJoin, rightOuterJoin, fullOuterJoin, cogroup

        /// How many input streams the operation reads.
        public var inputs: Int { self == .groupByKey ? 1 : 2 }
    }

    public let kind: Kind
    public let partitions: Int
    /// Records of the last batch without a key (counted by partition 0, which sees every record).
    private var keyless = 0

    public var discardedInLastBatch: (count: Int, reason: String?) {
        (keyless, keyless > 0 ? "a record has no key (\(kind.rawValue) needs keyed records)" : nil)
    }

    public init(_ kind: Kind, partitions: Int) {
        precondition(partitions >= 1)
        self.kind = kind
        self.partitions = partitions
    }

    /// The output values of one key, from its records on each side.
    private func values(of group: [[Ref]], text: (Ref) -> String, list: ([Ref]) -> String) -> [String] {
        switch kind {
        case .groupByKey:
            return [list(group[0])]
        case .cogroup:
            return ["(\(list(group[0])),\(list(group[1])))"]
        case .join:
            return group[0].flatMap { v in group[1].map { w in "(\(text(v)),\(text(w)))" } }
        case .leftOuterJoin:
            return group[0].flatMap { v in
                group[1].isEmpty ? ["(\(text(v)),None)"] : group[1].map { w in "(\(text(v)),Some(\(text(w))))" }
            }
        case .rightOuterJoin:
            return group[1].flatMap { w in
                group[0].isEmpty ? ["(None,\(text(w)))"] : group[0].map { v in "(Some(\(text(v))),\(text(w)))" }
            }
        case .fullOuterJoin:
            if group[1].isEmpty { return group[0].map { v in "(Some(\(text(v))),None)" } }
            if group[0].isEmpty { return group[1].map { w in "(None,Some(\(text(w))))" } }
            return group[0].flatMap { v in group[1].map { w in "(Some(\(text(v))),Some(\(text(w))))" } }
        }
    }

    /// A record: which chunk, which index in it.
    private struct Ref {
        var chunk: Int32
        var index: Int32
    }

    public func run(partition p: Int, chunks: [CollectedChunk], id: UInt64) throws -> [OwnedBatch] {
        let groups = KeyTable<Int32>(expectedKeys: 64)
        var sides: [[[Ref]]] = []  // group -> side -> records
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
                if group == sides.count { sides.append([[Ref]](repeating: [], count: kind.inputs)) }
                sides[group][side].append(Ref(chunk: Int32(c), index: Int32(i)))
            }
        }
        func text(_ ref: Ref) -> String { chunks[Int(ref.chunk)].batch.view.valueString(at: Int(ref.index)) }
        func list(_ refs: [Ref]) -> String { "[" + refs.map(text).joined(separator: ",") + "]" }

        var builder = BatchBuilder(keyed: true, expectedCount: sides.count)
        groups.forEachIndex { entry in
            let key = groups.key(at: entry)
            for value in values(of: sides[Int(groups.value(at: entry))], text: text, list: list) {
                var value = value
                value.withUTF8 { builder.append(key: key, value: UnsafeRawBufferPointer($0)) }
            }
        }
        return [OwnedBatch(builder)]
    }
}
