import SluiceSDK

/// A keyed operator at run time: its per-partition state (windows, keyed state) and the step that turns a batch's
/// aggregates into the operator's output.
///
/// Each partition's state is touched by one thread at a time (the executor runs one task per partition), so the
/// stage needs no locks. `snapshot()`/`restore(_:)` write and read the whole state in a versioned format tagged with
/// the operator's fingerprint; a snapshot can be restored into a different number of partitions.
public final class KeyedStage: @unchecked Sendable {  // per-partition state, each partition used by one task at a time
    public let op: KeyedOperator
    public let partitions: Int
    private var states: [PartitionState]
    /// The id of the last batch stepped, if any.
    public private(set) var lastBatchID: UInt64?
    /// Whether the partitions keep the batch tables and removed keys since the last checkpoint snapshot or restore
    /// (from the first one on, and only for the operations that can save deltas): a reference per batch, nothing per
    /// record.
    private var tracking = false

    public init(_ op: KeyedOperator, partitions: Int) {
        precondition(partitions >= 1)
        self.op = op
        self.partitions = op.kind.isKeyed ? partitions : 1
        states = (0..<self.partitions).map { _ in PartitionState() }
    }

    /// Whether the operator keeps state across batches (and so is checkpointed).
    public var isStateful: Bool { op.kind.isWindowed || op.kind == .updateStateByKey || op.kind == .mapWithState }

    /// Whether batch `id` ends a slide, so that the operator emits.
    func emits(batch id: UInt64) -> Bool { (id + 1) % UInt64(op.slide) == 0 }

    /// Runs partition `p` of batch `id` on that partition's aggregates of the batch. Returns the table to emit, or
    /// nil when the operator emits nothing this batch (a window between slides).
    func step(partition p: Int, batch table: KeyTable<Accumulator>, id: UInt64) throws -> KeyTable<Accumulator>? {
        let state = states[p]
        let reducer = op.reducer
        switch op.kind {
        case .countByValue, .reduceByKey, .count, .reduce:
            return table
        case .updateStateByKey:
            let running = state.running(expectedKeys: table.count)
            try running.fold(table, reducer)
            running.compactValueBytesIfWasteful()
            if tracking { state.track(table) }
            return running
        case .mapWithState:
            let running = state.running(expectedKeys: table.count)
            try running.fold(table, reducer)
            if tracking { state.track(table) }
            // Emit the batch's keys with their new state, then forget the keys idle for more than `timeout` batches.
            let output = KeyTable<Accumulator>(expectedKeys: table.count)
            let lastSeen = state.lastSeenTable(expectedKeys: table.count)
            let seen = Accumulator(records: 1, int: Int64(bitPattern: id))
            table.forEachIndex { i in
                let key = table.key(at: i)
                let hash = table.hash(at: i)
                guard let entry = running.find(key, hash: hash) else { return }
                let value = output.adopt(running.value(at: entry), from: running)
                output.upsert(key, hash: hash, initial: { value }, update: { _ in })
                lastSeen.upsert(key, hash: hash, initial: { seen }, update: { $0 = seen })
            }
            if op.timeout > 0 {
                // Spark's rule (MapWithStateRDDRecord): after the batch's records are applied, a key times out when
                // its last update is strictly older than batch time − timeout, i.e. more than `timeout` batches ago;
                // the keys just updated never do. Checked every batch, where Spark waits for its periodic full scan
                // (docs/operators.md). Snapshots still hold each key's last batch: one taken under the old `>=`
                // check restores as it is, lacking only the keys that check dropped a batch early.
                var idle: [Int] = []
                lastSeen.forEachIndex { i in
                    if id &- UInt64(bitPattern: lastSeen.value(at: i).int) > UInt64(op.timeout) { idle.append(i) }
                }
                for i in idle {
                    if tracking { state.trackRemoval(lastSeen.key(at: i)) }
                    if let entry = running.find(lastSeen.key(at: i), hash: lastSeen.hash(at: i)) { running.remove(at: entry) }
                    lastSeen.remove(at: i)
                }
                if running.needsCompaction { running.compact() }
                if lastSeen.needsCompaction { lastSeen.compact() }
            }
            running.compactValueBytesIfWasteful()
            return output
        case .countByWindow, .reduceByWindow, .countByValueAndWindow, .reduceByKeyAndWindow:
            state.ring.append(table)
            if op.inverse { try state.running(expectedKeys: table.count).fold(table, reducer) }
            if state.ring.count > op.window {
                let leaving = state.ring.removeFirst()
                if op.inverse { try state.running(expectedKeys: 0).unfold(leaving, reducer) }
            }
            guard emits(batch: id) else { return nil }
            let window: KeyTable<Accumulator>
            if op.inverse {
                window = state.running(expectedKeys: 0)
            } else {
                let largest = state.ring.map(\.count).max() ?? 0
                window = KeyTable<Accumulator>(expectedKeys: largest)
                for batch in state.ring { try window.fold(batch, reducer) }
            }
            if op.kind == .countByWindow {
                // Spark's countByWindow is a reduceByKeyAndWindow with an inverse under one key and no filter: the
                // key appears with the first window that holds a record and stays, with 0 once the window empties.
                // Before that window there is no key, and so no count.
                if window.count > 0 { state.windowHeldRecords = true } else if !state.windowHeldRecords { return nil }
            }
            return window
        }
    }

    /// Bytes the operator's state holds across batches (window rings, running aggregates, keyed state).
    public var stateBytes: Int {
        states.reduce(0) { total, state in
            total + state.ring.reduce(0) { $0 + $1.allocatedBytes } + (state.runningTable?.allocatedBytes ?? 0)
                + (state.lastSeen?.allocatedBytes ?? 0)
        }
    }

    /// Keys in the operator's running state (an inverse window's, updateStateByKey's, mapWithState's); a window
    /// without an inverse keeps no running state, so the keys of each batch it holds (one key in two batches, twice).
    public var stateKeys: Int {
        states.reduce(0) { $0 + ($1.runningTable?.count ?? $1.ring.reduce(0) { $0 + $1.count }) }
    }

    /// Records that the batch `id` has been stepped in every partition.
    func finish(batch id: UInt64) { lastBatchID = id }

    // MARK: Output

    /// The output records of one emitting step.
    func render(_ table: KeyTable<Accumulator>?) -> OwnedBatch? {
        guard let table else { return nil }
        let keyed = op.kind.isKeyed
        if !keyed && table.count == 0 {
            // count says 0 for an empty batch, countByWindow for an empty window after one that held records
            // (`step` gave no table before); reduce and reduceByWindow say nothing.
            var builder = BatchBuilder(valueType: .int64)
            if (op.kind == .count || op.kind == .countByWindow) && !op.dropZero { builder.append(Int64(0)) }
            return OwnedBatch(builder)
        }
        var allIntegers = true
        table.forEachIndex { i in
            let kind = result(table.value(at: i)).kind
            if kind != .int { allIntegers = false }
        }
        var builder = BatchBuilder(valueType: allIntegers ? .int64 : .bytes, keyed: keyed, expectedCount: table.count)
        table.forEachIndex { i in
            let value = result(table.value(at: i))
            if op.dropZero && value.kind != .text && value.asDouble == 0 { return }
            let key: UnsafeRawBufferPointer? = keyed ? table.key(at: i) : nil
            if allIntegers {
                if let key { builder.append(key: key, value: value.int) } else { builder.append(value.int) }
                return
            }
            var text: String
            switch value.kind {
            case .int: text = String(value.int)
            case .double: text = String(value.double)
            case .text:
                let bytes = table.text(of: value)
                if let key { builder.append(key: key, value: bytes) } else { builder.append(bytes) }
                return
            }
            text.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                if let key { builder.append(key: key, value: bytes) } else { builder.append(bytes) }
            }
        }
        return OwnedBatch(builder)
    }

    /// The value the function reports for an accumulator.
    func result(_ accumulator: Accumulator) -> Accumulator {
        if op.custom != nil { return accumulator }
        switch op.function {
        case .count:
            return Accumulator(records: accumulator.records, int: accumulator.records)
        case .mean:
            return Accumulator(records: accumulator.records, double: accumulator.asDouble / Double(accumulator.records), kind: .double)
        case .sum, .min, .max, .first, .last:
            return accumulator
        }
    }

    // MARK: Snapshots

    static let snapshotMagic = Array("SLSTATE2".utf8)

    /// The whole state of the stage, in a versioned format: partitions are merged (keys are disjoint across them).
    public func snapshot() -> [UInt8] {
        var out = SnapshotWriter()
        out.bytes(Self.snapshotMagic)
        out.string(op.fingerprint)
        out.u64(lastBatchID.map { $0 + 1 } ?? 0)
        let ringLength = states.first?.ring.count ?? 0
        out.u32(UInt32(ringLength))
        for slot in 0..<ringLength { out.tables(states.map { $0.ring[slot] }) }
        let hasRunning = states.contains { $0.runningTable != nil }
        out.u8(hasRunning ? 1 : 0)
        if hasRunning { out.tables(states.map { $0.running(expectedKeys: 0) }) }
        let hasLastSeen = states.contains { $0.lastSeen != nil }
        let heldRecords = states.contains { $0.windowHeldRecords }
        out.u8((hasLastSeen ? Self.lastSeenFollows : 0) | (heldRecords ? Self.windowHeldRecords : 0))
        if hasLastSeen { out.tables(states.map { $0.lastSeenTable(expectedKeys: 0) }) }
        return out.data
    }

    // The byte after the running state: bits saying what follows or holds. It was 0 or 1 (lastSeen tables follow)
    // before countByWindow needed its flag, so older snapshots read as they are — a countByWindow saved by one reads
    // as never having held a record, and counts again from its next record — and an older Sluice reads a newer
    // countByWindow snapshot as one without the flag.
    static let lastSeenFollows: UInt8 = 1
    static let windowHeldRecords: UInt8 = 2

    /// Replaces the state with a snapshot taken by a stage of the same fingerprint, re-partitioned by key hash.
    public func restore(_ snapshot: [UInt8]) throws(SnapshotError) {
        var input = SnapshotReader(snapshot)
        guard try input.bytes(Self.snapshotMagic.count) == Self.snapshotMagic else {
            throw SnapshotError("not a Sluice operator state snapshot (bad magic)")
        }
        let fingerprint = try input.string()
        guard fingerprint == op.fingerprint else {
            throw SnapshotError("the snapshot is of \(fingerprint), this stage is \(op.fingerprint)")
        }
        let last = try input.u64()
        let ringLength = Int(try input.u32())
        let fresh = (0..<partitions).map { _ in PartitionState() }
        for _ in 0..<ringLength {
            let tables = try input.table(partitions: partitions)
            for p in 0..<partitions { fresh[p].ring.append(tables[p]) }
        }
        if try input.u8() == 1 {
            let tables = try input.table(partitions: partitions)
            for p in 0..<partitions { fresh[p].runningTable = tables[p] }
        }
        let flags = try input.u8()
        guard flags & ~(Self.lastSeenFollows | Self.windowHeldRecords) == 0 else {
            throw SnapshotError("unknown state flags \(flags) in the snapshot")
        }
        if flags & Self.lastSeenFollows != 0 {
            let tables = try input.table(partitions: partitions)
            for p in 0..<partitions { fresh[p].lastSeen = tables[p] }
        }
        if flags & Self.windowHeldRecords != 0 { for state in fresh { state.windowHeldRecords = true } }
        guard input.atEnd else { throw SnapshotError("\(input.remaining) unexpected bytes after the state") }
        states = fresh
        lastBatchID = last == 0 ? nil : last - 1
        // The restored state is a checkpoint's: the next delta goes on from it.
        tracking = savesDeltas
    }

    // MARK: Deltas

    static let deltaMagic = Array("SLDELTAK".utf8)

    /// updateStateByKey and mapWithState change only the keys of each batch (and mapWithState drops idle ones), so
    /// their changes are the batch tables they kept; a window's ring turns over wholesale.
    var savesDeltas: Bool { op.kind == .updateStateByKey || op.kind == .mapWithState }

    public func checkpointSnapshot(delta: Bool) -> CheckpointSnapshot {
        let canDelta = delta && tracking && savesDeltas && !states.contains { $0.overflowed }
        let bytes = canDelta ? deltaSnapshot() : snapshot()
        for state in states { state.forgetChanges() }
        tracking = savesDeltas
        return CheckpointSnapshot(bytes: bytes, isDelta: canDelta)
    }

    /// The keys removed since the last checkpoint snapshot, then the current entries of every key a batch touched
    /// since, in the order of the state's entries (so that applying them in turn rebuilds the same order), for the
    /// running state and for mapWithState's last-seen batches.
    private func deltaSnapshot() -> [UInt8] {
        var out = SnapshotWriter()
        out.bytes(Self.deltaMagic)
        out.string(op.fingerprint)
        out.u64(lastBatchID.map { $0 + 1 } ?? 0)
        out.u32(UInt32(states.reduce(0) { $0 + $1.removed.count }))
        for state in states { for key in state.removed { out.key(key) } }
        let running = states.map { $0.running(expectedKeys: 0) }
        out.entries(of: running, at: zip(states, running).map { $0.changedIndices(in: $1) })
        let hasLastSeen = states.contains { $0.lastSeen != nil }
        out.u8(hasLastSeen ? 1 : 0)
        if hasLastSeen {
            let lastSeen = states.map { $0.lastSeenTable(expectedKeys: 0) }
            out.entries(of: lastSeen, at: zip(states, lastSeen).map { $0.changedIndices(in: $1) })
        }
        return out.data
    }

    public func applyDelta(_ delta: [UInt8]) throws(SnapshotError) {
        var input = SnapshotReader(delta)
        guard try input.bytes(Self.deltaMagic.count) == Self.deltaMagic else {
            throw SnapshotError("not a Sluice operator state delta (bad magic)")
        }
        let fingerprint = try input.string()
        guard fingerprint == op.fingerprint else {
            throw SnapshotError("the delta is of \(fingerprint), this stage is \(op.fingerprint)")
        }
        guard savesDeltas else { throw SnapshotError("\(op.fingerprint) saves no deltas, yet one was found for it") }
        let last = try input.u64()
        var removed: [[UInt8]] = []
        for _ in 0..<Int(try input.u32()) { removed.append(try input.bytes(Int(try input.u32()))) }
        let running = states.map { $0.running(expectedKeys: 0) }
        // Removals first: a key removed and set again since the previous delta is among both.
        for key in removed { running.removeKey(key, partitions: partitions) }
        try input.apply(into: running)
        let flag = try input.u8()
        guard flag <= 1 else { throw SnapshotError("unknown state flags \(flag) in the delta") }
        if flag == 1 {
            let lastSeen = states.map { $0.lastSeenTable(expectedKeys: 0) }
            for key in removed { lastSeen.removeKey(key, partitions: partitions) }
            try input.apply(into: lastSeen)
        }
        guard input.atEnd else { throw SnapshotError("\(input.remaining) unexpected bytes after the delta") }
        for table in running + states.compactMap(\.lastSeen) where table.needsCompaction { table.compact() }
        lastBatchID = last == 0 ? nil : last - 1
        for state in states { state.forgetChanges() }
        tracking = true
    }
}

extension [KeyTable<Accumulator>] {
    /// Removes `key` from the table of these partitions its hash belongs to, if it is there.
    func removeKey(_ key: [UInt8], partitions: Int) {
        key.withUnsafeBytes { key in
            let hash = hashKey(key)
            let table = self[partitions == 1 ? 0 : hashPartition(hash, partitions)]
            if let entry = table.find(key, hash: hash) { table.remove(at: entry) }
        }
    }
}

/// One partition's state of a keyed stage.
final class PartitionState {
    /// Windows: the aggregates of the last `window` batches, oldest first.
    var ring: [KeyTable<Accumulator>] = []
    /// An inverse window's running aggregate, or updateStateByKey's and mapWithState's state.
    var runningTable: KeyTable<Accumulator>?
    /// mapWithState: the id of the last batch that had records of each key (in `int`).
    var lastSeen: KeyTable<Accumulator>?
    /// countByWindow: whether a window at a slide has held a record; from then on an empty window counts 0.
    var windowHeldRecords = false
    /// The batch tables stepped since the last checkpoint snapshot (their keys are the ones that changed), and the
    /// keys removed since; `overflowed` once more were kept than a delta is worth (snapshots stopped being taken).
    var changed: [KeyTable<Accumulator>] = []
    var removed: [[UInt8]] = []
    var overflowed = false

    static let changedLimit = 8

    func track(_ table: KeyTable<Accumulator>) {
        guard !overflowed else { return }
        if changed.count == Self.changedLimit {
            overflowed = true
            changed = []
            removed = []
        } else {
            changed.append(table)
        }
    }

    func trackRemoval(_ key: UnsafeRawBufferPointer) {
        guard !overflowed else { return }
        if removed.count > max(1024, runningTable?.count ?? 0) {
            overflowed = true
            changed = []
            removed = []
        } else {
            removed.append(Array(key))
        }
    }

    func forgetChanges() {
        changed = []
        removed = []
        overflowed = false
    }

    /// The entries of `table` whose keys a kept batch table holds, ascending (each once).
    func changedIndices(in table: KeyTable<Accumulator>) -> [Int] {
        var indices: [Int] = []
        for batch in changed {
            batch.forEachIndex { i in
                if let entry = table.find(batch.key(at: i), hash: batch.hash(at: i)) { indices.append(entry) }
            }
        }
        indices.sort()
        // Several batch tables may hold the same key: each entry once.
        var unique: [Int] = []
        unique.reserveCapacity(indices.count)
        for index in indices where unique.last != index { unique.append(index) }
        return unique
    }

    func lastSeenTable(expectedKeys: Int) -> KeyTable<Accumulator> {
        if let lastSeen { return lastSeen }
        let table = KeyTable<Accumulator>(expectedKeys: max(16, expectedKeys))
        lastSeen = table
        return table
    }

    func running(expectedKeys: Int) -> KeyTable<Accumulator> {
        if let runningTable { return runningTable }
        let table = KeyTable<Accumulator>(expectedKeys: max(16, expectedKeys))
        runningTable = table
        return table
    }
}

/// A snapshot that cannot be restored, and why.
public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

struct SnapshotWriter {
    var data: [UInt8] = []

    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func bytes(_ v: some Sequence<UInt8>) { data.append(contentsOf: v) }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u32(UInt32(utf8.count))
        bytes(utf8)
    }

    mutating func key(_ key: some Collection<UInt8>) {
        u32(UInt32(key.count))
        bytes(key)
    }

    /// The entries of several tables as one table (their keys are disjoint): key, accumulator, text.
    mutating func tables(_ tables: [KeyTable<Accumulator>]) {
        u32(UInt32(tables.reduce(0) { $0 + $1.count }))
        for table in tables { table.forEachIndex { entry(table, $0) } }
    }

    /// Entries `indices[t]` of each table `tables[t]`, in the format of `tables(_:)`.
    mutating func entries(of tables: [KeyTable<Accumulator>], at indices: [[Int]]) {
        u32(UInt32(indices.reduce(0) { $0 + $1.count }))
        for (table, chosen) in zip(tables, indices) { for i in chosen { entry(table, i) } }
    }

    private mutating func entry(_ table: KeyTable<Accumulator>, _ i: Int) {
        key(table.key(at: i))
        let value = table.value(at: i)
        u64(UInt64(bitPattern: value.records))
        u8(value.kind.rawValue)
        switch value.kind {
        case .int: u64(UInt64(bitPattern: value.int))
        case .double: u64(value.double.bitPattern)
        case .text:
            let text = table.text(of: value)
            u32(UInt32(text.count))
            bytes(text)
        }
    }
}

extension SnapshotWriter {
    /// A batch's records: value type, whether keyed / timestamped, then each record.
    mutating func records(_ view: BatchView) {
        u8(UInt8(view.valueType.rawValue))
        u8(view.hasKeys ? 1 : 0)
        u8(view.hasTimestamps ? 1 : 0)
        u32(UInt32(view.count))
        for i in 0..<view.count {
            if view.hasKeys {
                if let key = view.key(at: i) {
                    u8(1)
                    u32(UInt32(key.count))
                    bytes(key)
                } else {
                    u8(0)
                }
            }
            switch view.valueType {
            case .int64: u64(UInt64(bitPattern: view.int64Value(at: i)))
            case .bytes:
                let value = view.value(at: i)
                u32(UInt32(value.count))
                bytes(value)
            }
            if view.hasTimestamps { u64(UInt64(bitPattern: view.timestamp(at: i) ?? 0)) }
        }
    }
}

extension SnapshotReader {
    mutating func records() throws(SnapshotError) -> OwnedBatch {
        guard let valueType = ValueType(rawValue: UInt32(try u8())) else { throw SnapshotError("unknown value type in a snapshot") }
        let keyed = try u8() == 1
        let timestamped = try u8() == 1
        let count = Int(try u32())
        var builder = BatchBuilder(valueType: valueType, keyed: keyed, timestamps: timestamped, expectedCount: count)
        for _ in 0..<count {
            var key: [UInt8]?
            if keyed, try u8() == 1 { key = try bytes(Int(try u32())) }
            switch valueType {
            case .int64:
                let value = Int64(bitPattern: try u64())
                if let key { key.withUnsafeBytes { builder.append(key: $0, value: value) } } else { builder.append(value) }
            case .bytes:
                let value = try bytes(Int(try u32()))
                value.withUnsafeBytes { v in
                    if let key { key.withUnsafeBytes { builder.append(key: $0, value: v) } } else { builder.append(v) }
                }
            }
            if timestamped { builder.setLastTimestamp(Int64(bitPattern: try u64())) }
        }
        return OwnedBatch(builder)
    }
}

struct SnapshotReader {
    private let data: [UInt8]
    private var position = 0

    init(_ data: [UInt8]) { self.data = data }

    var atEnd: Bool { position == data.count }
    var remaining: Int { data.count - position }

    mutating func bytes(_ n: Int) throws(SnapshotError) -> [UInt8] {
        guard n >= 0, n <= remaining else { throw SnapshotError("the snapshot is truncated at byte \(position)") }
        defer { position += n }
        return Array(data[position..<(position + n)])
    }

    mutating func u8() throws(SnapshotError) -> UInt8 { try bytes(1)[0] }
    mutating func u32() throws(SnapshotError) -> UInt32 {
        try bytes(4).withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }
    mutating func u64() throws(SnapshotError) -> UInt64 {
        try bytes(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
    mutating func string() throws(SnapshotError) -> String {
        let n = Int(try u32())
        return String(decoding: try bytes(n), as: UTF8.self)
    }

    /// A table written by `SnapshotWriter.tables`, split into `partitions` tables by key hash.
    mutating func table(partitions: Int) throws(SnapshotError) -> [KeyTable<Accumulator>] {
        let count = Int(try u32())
        let tables = (0..<partitions).map { _ in KeyTable<Accumulator>(expectedKeys: count / partitions + 16) }
        for _ in 0..<count {
            let (key, value, text) = try entry()
            let hash = key.withUnsafeBytes { hashKey($0) }
            let table = tables[partitions == 1 ? 0 : hashPartition(hash, partitions)]
            if key.withUnsafeBytes({ table.find($0, hash: hash) }) != nil {
                throw SnapshotError("key repeated in a snapshot table")
            }
            let entry = table.adopting(value, text: text)
            key.withUnsafeBytes { _ = table.upsert($0, hash: hash, initial: { entry }, update: { _ in }) }
        }
        return tables
    }

    /// Entries written by `SnapshotWriter.entries`, each set in the table of `tables` its key's hash belongs to
    /// (replacing the value of a key the table has; a new key goes last).
    mutating func apply(into tables: [KeyTable<Accumulator>]) throws(SnapshotError) {
        let count = Int(try u32())
        for _ in 0..<count {
            let (key, value, text) = try entry()
            let hash = key.withUnsafeBytes { hashKey($0) }
            let table = tables[tables.count == 1 ? 0 : hashPartition(hash, tables.count)]
            let entry = table.adopting(value, text: text)
            key.withUnsafeBytes { _ = table.upsert($0, hash: hash, initial: { entry }, update: { $0 = entry }) }
        }
    }

    /// One entry: key, accumulator, and the accumulator's text (empty unless it is text).
    private mutating func entry() throws(SnapshotError) -> (key: [UInt8], value: Accumulator, text: [UInt8]) {
        let key = try bytes(Int(try u32()))
        let records = Int64(bitPattern: try u64())
        guard let kind = Accumulator.Kind(rawValue: try u8()) else {
            throw SnapshotError("unknown value kind at byte \(position - 1)")
        }
        var value = Accumulator(records: records, kind: kind)
        var text: [UInt8] = []
        switch kind {
        case .int: value.int = Int64(bitPattern: try u64())
        case .double: value.double = Double(bitPattern: try u64())
        case .text: text = try bytes(Int(try u32()))
        }
        return (key, value, text)
    }
}

extension KeyTable where Value == Accumulator {
    /// `value` with its text (if it is text) copied into this table's value bytes.
    func adopting(_ value: Accumulator, text: [UInt8]) -> Accumulator {
        guard value.kind == .text else { return value }
        var copy = value
        copy.textStart = text.withUnsafeBytes { valueBytes.append($0) }
        copy.textLength = UInt32(text.count)
        return copy
    }
}
