/// A stage whose state outlives a batch (windows, `updateStateByKey`, `mapWithState`, `window`): what a scheduler
/// saves with every commit and restores at a start. The scheduler finds these through `StreamGraph.statefulStages`,
/// so a new kind of stateful stage conforms here instead of being known by its concrete type.
public protocol StatefulStage: AnyObject, Sendable {
    /// Whether this instance keeps state across batches (a keyed stage does only for some operations).
    var keepsState: Bool { get }
    /// What defines the state: a snapshot taken under one fingerprint is refused under another.
    var fingerprint: String { get }
    /// The whole state, in a versioned format tagged with the fingerprint.
    func snapshot() -> [UInt8]
    /// Replaces the state with a snapshot taken under the same fingerprint.
    func restore(_ snapshot: [UInt8]) throws(SnapshotError)
    /// How much the state holds, for metrics: keys for a keyed stage, records for a stage that keeps records. Read
    /// between batches, so it walks the stage's partitions, never its entries.
    var stateKeys: Int { get }
    /// The memory the state takes (allocated, not serialized: the snapshot's size is another figure).
    var stateBytes: Int { get }
    /// A snapshot for a checkpoint: with `delta`, only what changed since the previous checkpoint snapshot or
    /// restore (keys set and keys removed) when the stage can say so, else the whole state. Either way the stage
    /// tracks its changes from here on, so the caller must commit every checkpoint snapshot it takes, in order, or
    /// take a whole one next.
    func checkpointSnapshot(delta: Bool) -> CheckpointSnapshot
    /// Applies a delta taken by `checkpointSnapshot(delta: true)` on top of the state restored from the snapshot
    /// (full, then earlier deltas) it was taken after.
    func applyDelta(_ delta: [UInt8]) throws(SnapshotError)
}

/// What `StatefulStage.checkpointSnapshot(delta:)` took: the whole state, or the changes since the previous one.
public struct CheckpointSnapshot: Sendable, Equatable {
    public var bytes: [UInt8]
    public var isDelta: Bool
    public init(bytes: [UInt8], isDelta: Bool) {
        self.bytes = bytes
        self.isDelta = isDelta
    }
}

extension StatefulStage {
    /// A stage that cannot tell its changes (a window's ring turns over every batch anyway) always saves it all.
    public func checkpointSnapshot(delta: Bool) -> CheckpointSnapshot { CheckpointSnapshot(bytes: snapshot(), isDelta: false) }

    public func applyDelta(_ delta: [UInt8]) throws(SnapshotError) {
        throw SnapshotError("this stage (\(fingerprint)) saves no deltas, yet one was found for it")
    }
}

extension KeyedStage: StatefulStage {
    public var keepsState: Bool { isStateful }
    public var fingerprint: String { op.fingerprint }
}

extension WindowStage: StatefulStage {
    public var keepsState: Bool { true }
}

extension StreamGraph {
    /// The stages that keep state across batches, with their node names, in graph order.
    public var statefulStages: [(name: String, stage: any StatefulStage)] {
        nodes.indices.compactMap { index in
            let stage: (any StatefulStage)?
            switch nodes[index] {
            case .keyed(let keyed, _): stage = keyed
            case .collecting(let collecting, _): stage = collecting as? any StatefulStage
            default: stage = nil
            }
            guard let stage, stage.keepsState else { return nil }
            return (names[index], stage)
        }
    }
}
