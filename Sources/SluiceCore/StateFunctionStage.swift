import SluiceSDK

/// Spark's `updateStateByKey(f)` and `mapWithState(spec)` with a user's function (`KeyedStateFunction`): per key, a
/// state of bytes across batches, hash-partitioned by key.
///
/// Each batch, per partition: every key of the batch is applied with its records, in the order keys first arrived;
/// then, for `updateStateByKey`, every other key with state is applied with no records (Spark calls `f(Seq(), state)`
/// for them, so a function can age or drop idle keys); for `mapWithState` with a timeout, a key whose last records
/// came more than `timeout` batches before this one is applied once with `timingOut` and removed — Spark's rule
/// (state last updated strictly before batch time − timeout, checked after the batch's records are applied), checked
/// every batch rather than on Spark's every-tenth-batch full scans.
public final class StateFunctionStage: CollectingStage, StatefulStage, @unchecked Sendable {  // a partition's state is touched by its own task only
    public enum Mode: Sendable, Equatable {
        case updateStateByKey
        /// `timeout` in batches; 0 keeps keys forever.
        case mapWithState(timeout: Int)
    }

    public let mode: Mode
    public let function: any KeyedStateFunction
    public let partitions: Int
    /// Replaced only by `restore`, between batches; each partition is mutated in place by its own task.
    private var states: [PartitionState]
    /// Records of the last batch without a key (counted by partition 0, which sees every record).
    private var keyless = 0
    /// Whether the partitions note what changes (from the first checkpoint snapshot or restore on): a flag per key
    /// set and a copy of each removed key, so that a checkpoint can save only those.
    private var tracking = false

    /// One partition's keys: insertion-ordered (a `KeyTable`), so a replay emits byte-identical output. A key's state
    /// is in `slots` at its entry's index.
    final class PartitionState {
        let table = KeyTable<UInt8>(expectedKeys: 64)
        /// Parallel to the table's entries, removed ones included until `compactIfSparse`.
        var slots: [Slot] = []
        /// Entries whose `changed` flag was set since the last checkpoint snapshot (each once; some since removed).
        var changed: [Int32] = []
        /// Keys removed since the last checkpoint snapshot.
        var removed: [[UInt8]] = []
        /// Set once more removals happened than a delta is worth.
        var overflowed = false
        /// Bytes of the live states, kept as they change so that metrics need not walk the keys.
        var stateByteCount = 0

        struct Slot {
            var state: [UInt8]
            /// The batch whose records last reached the key.
            var lastSeen: UInt64
            var changed = false
        }

        var live: Int { table.count }

        func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? { table.find(key, hash: hash) }

        /// Sets the state of `key`, a new key going last; notes the change when `track`.
        func set(_ key: UnsafeRawBufferPointer, hash: UInt64, _ state: [UInt8], lastSeen: UInt64, track: Bool) {
            var inserted = false
            let entry = table.upsert(key, hash: hash, initial: { inserted = true; return 0 }, update: { _ in })
            if inserted {
                slots.append(Slot(state: state, lastSeen: lastSeen))
            } else {
                stateByteCount -= slots[entry].state.count
                slots[entry].state = state
                slots[entry].lastSeen = lastSeen
            }
            stateByteCount += state.count
            if track { noteChange(entry) }
        }

        func setLastSeen(_ entry: Int, _ batch: UInt64, track: Bool) {
            guard slots[entry].lastSeen != batch else { return }
            slots[entry].lastSeen = batch
            if track { noteChange(entry) }
        }

        func setState(_ entry: Int, _ state: [UInt8], track: Bool) {
            stateByteCount += state.count - slots[entry].state.count
            slots[entry].state = state
            if track { noteChange(entry) }
        }

        private func noteChange(_ entry: Int) {
            guard !slots[entry].changed else { return }
            slots[entry].changed = true
            changed.append(Int32(entry))
        }

        func remove(at entry: Int, track: Bool) {
            if track && !overflowed {
                // Removals noted beyond the keys the state holds would make a delta larger than the whole state
                // (checkpoint snapshots stopped being taken): stop noting, the next snapshot is whole.
                if removed.count > max(1024, table.count) {
                    overflowed = true
                    removed = []
                } else {
                    removed.append(Array(table.key(at: entry)))
                }
            }
            stateByteCount -= slots[entry].state.count
            slots[entry].state = []
            table.remove(at: entry)
        }

        func isLive(_ entry: Int) -> Bool { table.isLive(at: entry) }

        /// Drops the slots of removed keys once they are most of the table, keeping the order of the rest.
        func compactIfSparse() {
            guard table.needsCompaction else { return }
            let live = table.indices
            table.compact()
            slots = live.map { slots[$0] }
            changed = slots.indices.filter { slots[$0].changed }.map { Int32($0) }
        }

        /// The live entries changed since the last checkpoint snapshot, in table order.
        func changedEntries() -> [Int] { changed.map(Int.init).filter(isLive).sorted() }

        func forgetChanges() {
            for entry in changed { slots[Int(entry)].changed = false }
            changed = []
            removed = []
            overflowed = false
        }
    }

    public init(_ mode: Mode, function: any KeyedStateFunction, partitions: Int) {
        precondition(partitions >= 1)
        self.mode = mode
        self.function = function
        self.partitions = partitions
        states = (0..<partitions).map { _ in PartitionState() }
    }

    /// Records without a key, and those the function could not read (it reports them if it is `DiscardReporting`).
    public var discardedInLastBatch: (count: Int, reason: String?) {
        let unread: (count: Int, reason: String?) = (function as? any DiscardReporting)?.takeDiscarded() ?? (0, nil)
        let reason = keyless > 0 ? "a record has no key (\(operationName) needs keyed records)" : unread.reason
        return (keyless + unread.count, reason)
    }

    private var operationName: String {
        switch mode {
        case .updateStateByKey: "updateStateByKey"
        case .mapWithState: "mapWithState"
        }
    }

    public func run(partition p: Int, chunks: [CollectedChunk], id: UInt64) throws -> [OwnedBatch] {
        if p == 0 { keyless = 0 }
        let views = chunks.map(\.batch.view)
        // The batch's keys of this partition in arrival order (a group is its entry in `groups`, whose value counts
        // its records), then every record's group, so that the records can be laid out group by group.
        let groups = KeyTable<Int32>(expectedKeys: 64)
        var recordGroups: [(chunk: Int32, index: Int32, group: Int32)] = []
        for (c, view) in views.enumerated() {
            for i in 0..<view.count {
                guard let key = view.key(at: i) else {
                    if p == 0 { keyless += 1 }
                    continue
                }
                let hash = hashKey(key)
                if partitions > 1 && hashPartition(hash, partitions) != p { continue }
                let group = groups.upsert(key, hash: hash, initial: { 1 }, update: { $0 += 1 })
                recordGroups.append((Int32(c), Int32(i), Int32(group)))
            }
        }
        // Counting sort: group g's records are refs[starts[g]..<starts[g + 1]], in arrival order.
        var starts = [Int](repeating: 0, count: groups.count + 1)
        for g in 0..<groups.count { starts[g + 1] = starts[g] + Int(groups.value(at: g)) }
        var next = starts
        var refs = [(chunk: Int32, index: Int32)](repeating: (0, 0), count: recordGroups.count)
        for record in recordGroups {
            let g = Int(record.group)
            refs[next[g]] = (record.chunk, record.index)
            next[g] += 1
        }

        var output = BatchBuilder(valueType: function.outputType, keyed: function.outputKeyed, expectedCount: groups.count)
        let state = states[p]
        let track = tracking
        for g in 0..<groups.count {
            let key = groups.key(at: g)
            let hash = groups.hash(at: g)
            let entry = state.find(key, hash: hash)
            let previous = entry.map { state.slots[$0].state }
            let values = KeyedValues(chunks: views, refs: refs[starts[g]..<starts[g + 1]])
            switch try function.apply(key: key, values: values, state: previous, timingOut: false, output: &output) {
            case .keep: if let entry { state.setLastSeen(entry, id, track: track) }
            case .set(let bytes): state.set(key, hash: hash, bytes, lastSeen: id, track: track)
            case .remove: if let entry { state.remove(at: entry, track: track) }
            }
        }
        switch mode {
        case .updateStateByKey:
            // Every key with state that the batch did not reach: those it reached were last seen in this batch.
            try state.table.forEachIndex { entry in
                guard state.slots[entry].lastSeen != id else { return }
                switch try call(state.table.key(at: entry), .none, state.slots[entry].state, timingOut: false, &output) {
                case .keep: break
                case .set(let bytes): state.setState(entry, bytes, track: track)
                case .remove: state.remove(at: entry, track: track)
                }
            }
        case .mapWithState(let timeout) where timeout > 0:
            try state.table.forEachIndex { entry in
                let slot = state.slots[entry]
                guard id > slot.lastSeen, id - slot.lastSeen > UInt64(timeout) else { return }
                _ = try call(state.table.key(at: entry), .none, slot.state, timingOut: true, &output)
                state.remove(at: entry, track: track)
            }
        case .mapWithState:
            break
        }
        state.compactIfSparse()
        return output.count > 0 ? [OwnedBatch(output)] : []
    }

    private func call(
        _ key: UnsafeRawBufferPointer, _ values: KeyedValues, _ state: [UInt8]?, timingOut: Bool, _ output: inout BatchBuilder
    ) throws -> StateChange {
        try function.apply(key: key, values: values, state: state, timingOut: timingOut, output: &output)
    }

    // MARK: State

    public var keepsState: Bool { true }

    public var fingerprint: String {
        switch mode {
        case .updateStateByKey: "updateStateByKey(stateFunction=\(function.name))"
        case .mapWithState(let timeout): "mapWithState(stateFunction=\(function.name),timeout=\(timeout))"
        }
    }

    static let snapshotMagic = Array("SLSTATEF".utf8)

    /// Every key's state and the batch it was last seen in, partitions one after another (each in its order).
    public func snapshot() -> [UInt8] {
        var out = SnapshotWriter()
        out.bytes(Self.snapshotMagic)
        out.string(fingerprint)
        out.u32(UInt32(states.reduce(0) { $0 + $1.live }))
        for partition in states { partition.table.forEachIndex { write(partition, $0, to: &out) } }
        return out.data
    }

    private func write(_ partition: PartitionState, _ entry: Int, to out: inout SnapshotWriter) {
        out.key(partition.table.key(at: entry))
        out.key(partition.slots[entry].state)
        out.u64(partition.slots[entry].lastSeen)
    }

    /// Replaces the state with a snapshot of the same fingerprint, spreading keys over this stage's partitions.
    public func restore(_ snapshot: [UInt8]) throws(SnapshotError) {
        var input = SnapshotReader(snapshot)
        guard try input.bytes(Self.snapshotMagic.count) == Self.snapshotMagic else {
            throw SnapshotError("not a Sluice state-function snapshot (bad magic)")
        }
        let saved = try input.string()
        guard saved == fingerprint else { throw SnapshotError("the snapshot is for \(saved), not \(fingerprint)") }
        let restored = (0..<partitions).map { _ in PartitionState() }
        try Self.readEntries(&input, into: restored)
        guard input.atEnd else { throw SnapshotError("the snapshot has \(input.remaining) bytes after its last key") }
        states = restored
        // The restored state is a checkpoint's: the next delta goes on from it.
        tracking = true
    }

    /// Reads a count and that many entries (key, state, last batch), setting each in the partition of `states` its
    /// key's hash belongs to.
    private static func readEntries(_ input: inout SnapshotReader, into states: [PartitionState]) throws(SnapshotError) {
        for _ in 0..<Int(try input.u32()) {
            let key = try input.bytes(Int(try input.u32()))
            let state = try input.bytes(Int(try input.u32()))
            let lastSeen = try input.u64()
            key.withUnsafeBytes { key in
                let hash = hashKey(key)
                states[states.count > 1 ? hashPartition(hash, states.count) : 0].set(key, hash: hash, state, lastSeen: lastSeen, track: false)
            }
        }
    }

    // MARK: Deltas

    static let deltaMagic = Array("SLDELTAF".utf8)

    public func checkpointSnapshot(delta: Bool) -> CheckpointSnapshot {
        let canDelta = delta && tracking && !states.contains { $0.overflowed }
        let bytes = canDelta ? deltaSnapshot() : snapshot()
        for partition in states { partition.forgetChanges() }
        tracking = true
        return CheckpointSnapshot(bytes: bytes, isDelta: canDelta)
    }

    /// The keys removed since the last checkpoint snapshot, then every key set since (with its state and last
    /// batch), in table order, so that applying them in turn rebuilds the same order.
    private func deltaSnapshot() -> [UInt8] {
        var out = SnapshotWriter()
        out.bytes(Self.deltaMagic)
        out.string(fingerprint)
        out.u32(UInt32(states.reduce(0) { $0 + $1.removed.count }))
        for partition in states { for key in partition.removed { out.key(key) } }
        let changed = states.map { $0.changedEntries() }
        out.u32(UInt32(changed.reduce(0) { $0 + $1.count }))
        for (partition, entries) in zip(states, changed) { for entry in entries { write(partition, entry, to: &out) } }
        return out.data
    }

    public func applyDelta(_ delta: [UInt8]) throws(SnapshotError) {
        var input = SnapshotReader(delta)
        guard try input.bytes(Self.deltaMagic.count) == Self.deltaMagic else {
            throw SnapshotError("not a Sluice state-function delta (bad magic)")
        }
        let saved = try input.string()
        guard saved == fingerprint else { throw SnapshotError("the delta is for \(saved), not \(fingerprint)") }
        // Removals first: a key removed and set again since the previous delta is among both.
        for _ in 0..<Int(try input.u32()) {
            try input.bytes(Int(try input.u32())).withUnsafeBytes { key in
                let hash = hashKey(key)
                let partition = states[partitions > 1 ? hashPartition(hash, partitions) : 0]
                if let entry = partition.find(key, hash: hash) { partition.remove(at: entry, track: false) }
            }
        }
        try Self.readEntries(&input, into: states)
        guard input.atEnd else { throw SnapshotError("the delta has \(input.remaining) bytes after its last key") }
        for partition in states {
            partition.compactIfSparse()
            partition.forgetChanges()
        }
        tracking = true
    }

    public var stateKeys: Int { states.reduce(0) { $0 + $1.live } }

    /// The table's allocation, the slots and the states' bytes (an estimate: Swift arrays do not report their
    /// allocations).
    public var stateBytes: Int {
        states.reduce(0) { total, partition in
            total + partition.table.allocatedBytes + partition.slots.capacity * MemoryLayout<PartitionState.Slot>.stride
                + partition.stateByteCount
        }
    }
}
