/// What a scheduler needs from durable storage to run a pipeline exactly once across crashes: the latest commit,
/// the record of the batch in flight, an atomic commit of positions and state, the batch clock, and a place for each
/// source's own files. `CheckpointStore` (a local directory) is the first implementation; a shared store for several
/// hosts implements the same calls, with partition ownership through `acquireLease`.
///
/// The calls come from one scheduling thread; a store is used by one scheduler at a time.
public protocol ProgressStore: AnyObject, Sendable {
    /// Where the store is, for messages ("resuming after batch 4 from DIR").
    var location: String { get }

    /// The newest commit whose record and state are intact, or nil when there is none. Throws when commits exist but
    /// none can be used: a pipeline must not silently start from scratch.
    func loadLatest() throws -> LoadedCommit?

    /// The record of the batch in flight, or why it cannot be used.
    func inflightStatus() -> InflightStatus

    /// The highest batch of any commit present, usable or damaged (no batch above it + 1 was ever planned).
    func highestCommitBatch() -> UInt64?

    /// Records the batch about to run; durable before the batch reads anything.
    func writeInflight(_ record: InflightRecord) throws

    /// Commits a batch atomically: `record` (whose `state` the store fills in) and the stages' state. Refuses when
    /// `lease` is no longer the store's current one, so a host that lost its partitions never commits. A snapshot
    /// that is a delta names the commit it applies on (`base`, the previous batch); the store records the chain
    /// (that commit's base and deltas, then this one) so that loading this commit restores the same state.
    func commit(_ record: CommitRecord, snapshots: [StageSnapshot], lease: ProgressLease) throws

    /// Whether the store takes deltas (`StageSnapshot.base`) and keeps their chains; a store that does not is given
    /// whole snapshots only.
    var keepsDeltas: Bool { get }

    /// Writes `clock` into every kept commit before any batch is planned under a new segment.
    func recordClock(_ clock: BatchClock) throws

    /// The directory of source `name`'s own durable files (write-ahead logs, indexes), created; nil when the store
    /// keeps none.
    func sourceDirectory(_ name: String) throws -> String?

    /// Takes ownership of the pipeline's partitions for `owner`. The lease's fencing token is checked at every
    /// commit.
    func acquireLease(owner: String) throws -> ProgressLease
}

extension ProgressStore {
    public var keepsDeltas: Bool { false }
}

/// One stage's state at a commit.
public struct StageSnapshot: Sendable, Equatable {
    public var stage: String
    public var fingerprint: String
    public var bytes: [UInt8]
    /// nil: `bytes` is the whole state; else the batch whose committed state `bytes` (a delta) applies on.
    public var base: UInt64?
    public init(stage: String, fingerprint: String, bytes: [UInt8], base: UInt64? = nil) {
        self.stage = stage
        self.fingerprint = fingerprint
        self.bytes = bytes
        self.base = base
    }
}

/// When a scheduler saves a stateful stage's changes rather than its whole state: after a whole snapshot, each
/// commit saves a delta (the keys set and removed since the commit before), until the chain holds `maxDeltas`
/// deltas or its deltas add up to more than `maxDeltaFraction` of the whole snapshot it started from; then the
/// next commit saves the whole state again (compaction). Restoring reads the base and every delta of the chain, so
/// the two bounds bound the time a start takes: at most 1 + `maxDeltaFraction` whole snapshots' bytes and one delta.
public struct IncrementalSnapshots: Sendable, Equatable {
    public var maxDeltas: Int
    public var maxDeltaFraction: Double

    public init(maxDeltas: Int = 50, maxDeltaFraction: Double = 0.5) {
        self.maxDeltas = maxDeltas
        self.maxDeltaFraction = maxDeltaFraction
    }

    /// What a stage's chain holds since its last whole snapshot.
    public struct Chain: Sendable, Equatable {
        /// The batch of the last commit, which the next delta applies on.
        public var batch: UInt64
        public var fullBytes: Int
        public var deltaBytes = 0
        public var deltas = 0
    }

    /// Whether the next commit may save a delta on `chain`.
    public func allowsDelta(after chain: Chain?) -> Bool {
        guard let chain else { return false }
        return chain.deltas < maxDeltas && Double(chain.deltaBytes) <= maxDeltaFraction * Double(chain.fullBytes)
    }

    /// The chain once `snapshot` of batch `batch` is committed.
    public static func chain(_ chain: Chain?, after snapshot: StageSnapshot, batch: UInt64) -> Chain {
        guard snapshot.base != nil, var chain else { return Chain(batch: batch, fullBytes: snapshot.bytes.count) }
        chain.batch = batch
        chain.deltaBytes += snapshot.bytes.count
        chain.deltas += 1
        return chain
    }
}

/// The right to commit a pipeline's partitions. `token` grows with every new owner (a fencing token): a store
/// refuses a commit under an older one, however late it arrives.
public struct ProgressLease: Sendable, Equatable {
    public var owner: String
    public var token: UInt64
    /// The partitions owned, by source name; nil: all of them (the directory store's lock covers the pipeline).
    public var partitions: [String: [Int]]?
    public init(owner: String, token: UInt64, partitions: [String: [Int]]? = nil) {
        self.owner = owner
        self.token = token
        self.partitions = partitions
    }
}

/// A commit refused because the lease it was made under is no longer current (another owner took the partitions).
public struct LeaseLost: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
