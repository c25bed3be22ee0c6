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
    private var states: [PartitionState]
    /// Records of the last batch without a key (counted by partition 0, which sees every record).
    private var keyless = 0

    /// One partition's keys: insertion-ordered, so a replay emits byte-identical output.
    struct PartitionState {
        var index: [[UInt8]: Int] = [:]
        var keys: [[UInt8]] = []
        var entries: [Entry?] = []
        var live = 0

        struct Entry {
            var state: [UInt8]
            /// The batch whose records last reached the key.
            var lastSeen: UInt64
        }

        mutating func set(_ key: [UInt8], _ entry: Entry) {
            if let slot = index[key] {
                if entries[slot] == nil { live += 1 }
                entries[slot] = entry
            } else {
                index[key] = keys.count
                keys.append(key)
                entries.append(entry)
                live += 1
            }
        }

        mutating func remove(_ key: [UInt8]) {
            guard let slot = index[key], entries[slot] != nil else { return }
            entries[slot] = nil
            live -= 1
        }

        /// Drops the slots of removed keys once they are most of the table, keeping the order of the rest.
        mutating func compactIfSparse() {
            guard keys.count > 64, live * 2 < keys.count else { return }
            var kept = PartitionState()
            for (key, entry) in zip(keys, entries) { if let entry { kept.set(key, entry) } }
            self = kept
        }
    }

    public init(_ mode: Mode, function: any KeyedStateFunction, partitions: Int) {
        precondition(partitions >= 1)
        self.mode = mode
        self.function = function
        self.partitions = partitions
        states = Array(repeating: PartitionState(), count: partitions)
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
        // The batch's keys of this partition, in arrival order, and their records.
        var groupOf: [[UInt8]: Int] = [:]
        var groupKeys: [[UInt8]] = []
        var groupRecords: [[(chunk: Int32, index: Int32)]] = []
        for (c, view) in views.enumerated() {
            for i in 0..<view.count {
                guard let key = view.key(at: i) else {
                    if p == 0 { keyless += 1 }
                    continue
                }
                if partitions > 1 && hashPartition(hashKey(key), partitions) != p { continue }
                let bytes = Array(key)
                let group: Int
                if let known = groupOf[bytes] {
                    group = known
                } else {
                    group = groupKeys.count
                    groupOf[bytes] = group
                    groupKeys.append(bytes)
                    groupRecords.append([])
                }
                groupRecords[group].append((Int32(c), Int32(i)))
            }
        }

        var output = BatchBuilder(valueType: function.outputType, keyed: function.outputKeyed, expectedCount: groupKeys.count)
        var state = states[p]
        defer { states[p] = state }
        for (key, records) in zip(groupKeys, groupRecords) {
            let previous = state.index[key].flatMap { state.entries[$0] }
            let change = try call(key, KeyedValues(chunks: views, refs: records[...]), previous?.state, timingOut: false, &output)
            switch change {
            case .keep: if let previous { state.set(key, .init(state: previous.state, lastSeen: id)) }
            case .set(let bytes): state.set(key, .init(state: bytes, lastSeen: id))
            case .remove: state.remove(key)
            }
        }
        switch mode {
        case .updateStateByKey:
            for (slot, key) in state.keys.enumerated() where groupOf[key] == nil {
                guard let entry = state.entries[slot] else { continue }
                switch try call(key, .none, entry.state, timingOut: false, &output) {
                case .keep: break
                case .set(let bytes): state.entries[slot]?.state = bytes
                case .remove: state.remove(key)
                }
            }
        case .mapWithState(let timeout) where timeout > 0:
            for (slot, key) in state.keys.enumerated() {
                guard let entry = state.entries[slot], id > entry.lastSeen, id - entry.lastSeen > UInt64(timeout) else { continue }
                _ = try call(key, .none, entry.state, timingOut: true, &output)
                state.remove(key)
            }
        case .mapWithState:
            break
        }
        state.compactIfSparse()
        return output.count > 0 ? [OwnedBatch(output)] : []
    }

    private func call(
        _ key: [UInt8], _ values: KeyedValues, _ state: [UInt8]?, timingOut: Bool, _ output: inout BatchBuilder
    ) throws -> StateChange {
        try key.withUnsafeBytes { key in
            try function.apply(key: key, values: values, state: state, timingOut: timingOut, output: &output)
        }
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
        for partition in states {
            for (key, entry) in zip(partition.keys, partition.entries) {
                guard let entry else { continue }
                out.u32(UInt32(key.count))
                out.bytes(key)
                out.u32(UInt32(entry.state.count))
                out.bytes(entry.state)
                out.u64(entry.lastSeen)
            }
        }
        return out.data
    }

    /// Replaces the state with a snapshot of the same fingerprint, spreading keys over this stage's partitions.
    public func restore(_ snapshot: [UInt8]) throws(SnapshotError) {
        var input = SnapshotReader(snapshot)
        guard try input.bytes(Self.snapshotMagic.count) == Self.snapshotMagic else {
            throw SnapshotError("not a Sluice state-function snapshot (bad magic)")
        }
        let saved = try input.string()
        guard saved == fingerprint else { throw SnapshotError("the snapshot is for \(saved), not \(fingerprint)") }
        var restored = Array(repeating: PartitionState(), count: partitions)
        for _ in 0..<Int(try input.u32()) {
            let key = try input.bytes(Int(try input.u32()))
            let state = try input.bytes(Int(try input.u32()))
            let lastSeen = try input.u64()
            let p = partitions > 1 ? key.withUnsafeBytes { hashPartition(hashKey($0), partitions) } : 0
            restored[p].set(key, .init(state: state, lastSeen: lastSeen))
        }
        guard input.atEnd else { throw SnapshotError("the snapshot has \(input.remaining) bytes after its last key") }
        states = restored
    }

    public var stateKeys: Int { states.reduce(0) { $0 + $1.live } }

    /// Keys and states as stored, plus the slot and index overhead per key (an estimate: Swift arrays and
    /// dictionaries do not report their allocations).
    public var stateBytes: Int {
        states.reduce(0) { total, partition in
            zip(partition.keys, partition.entries).reduce(total) { sum, pair in
                sum + pair.0.count + (pair.1?.state.count ?? 0) + 96
            }
        }
    }
}
