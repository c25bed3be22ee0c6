/// What a progress store records for one committed batch: source positions (by source name and partition, which
/// survive any change to the stages) and references to the operator state saved with it.
public struct CommitRecord: Codable, Sendable, Equatable {
    public struct Position: Codable, Sendable, Equatable {
        public var source: String
        public var partition: Int
        /// The next offset to read: everything below it is committed.
        public var offset: UInt64
        public init(source: String, partition: Int, offset: UInt64) {
            self.source = source
            self.partition = partition
            self.offset = offset
        }
    }

    public struct State: Codable, Sendable, Equatable {
        public var stage: String
        /// The definition the state was made under (`StatefulStage.fingerprint`).
        public var fingerprint: String
        /// Where the store keeps the state (for the directory store, a file relative to the directory): the whole
        /// state, or with `deltas` the base they apply to.
        public var file: String
        /// The checksum of what the store wrote to `file` (nil in records written before Sluice saved deltas): a
        /// file written again by a later attempt at the batch is not taken for the one this commit saved.
        public var checksum: String?
        /// The changes saved since `file`, oldest first: restoring applies each in turn (nil: none, as in every
        /// record written before Sluice saved deltas).
        public var deltas: [Delta]?
        public init(stage: String, fingerprint: String, file: String, checksum: String? = nil, deltas: [Delta]? = nil) {
            self.stage = stage
            self.fingerprint = fingerprint
            self.file = file
            self.checksum = checksum
            self.deltas = deltas
        }
    }

    /// The changes of one stage's state at `batch` over its state at `base` (the commit before).
    public struct Delta: Codable, Sendable, Equatable {
        public var batch: UInt64
        public var base: UInt64
        public var file: String
        /// The checksum of what the store wrote to `file`.
        public var checksum: String?
        public init(batch: UInt64, base: UInt64, file: String, checksum: String? = nil) {
            self.batch = batch
            self.base = base
            self.file = file
            self.checksum = checksum
        }
    }

    public var pipeline: String
    /// The last batch whose output every sink committed.
    public var batch: UInt64
    public var batchTimeMilliseconds: Int64
    public var positions: [Position]
    public var state: [State]
    /// The times of this batch and of every batch after it that was ever planned (nil in records written before
    /// Sluice kept the clock): a batch run again after falling back to this commit keeps the time of its first attempt.
    public var clock: BatchClock?

    public init(
        pipeline: String,
        batch: UInt64,
        batchTimeMilliseconds: Int64,
        positions: [Position],
        state: [State],
        clock: BatchClock? = nil
    ) {
        self.pipeline = pipeline
        self.batch = batch
        self.batchTimeMilliseconds = batchTimeMilliseconds
        self.positions = positions
        self.state = state
        self.clock = clock
    }
}

/// The batch planned but not yet committed: written before anything is read, so that after a crash the same batch
/// (same id, same time, same ranges) runs again.
public struct InflightRecord: Codable, Sendable, Equatable {
    public typealias Range = SourceRange

    public var batch: UInt64
    public var batchTimeMilliseconds: Int64
    public var ranges: [Range]
    /// The batch clock from this batch on (nil in records written before Sluice kept it).
    public var clock: BatchClock?

    public init(batch: UInt64, batchTimeMilliseconds: Int64, ranges: [Range], clock: BatchClock? = nil) {
        self.batch = batch
        self.batchTimeMilliseconds = batchTimeMilliseconds
        self.ranges = ranges
        self.clock = clock
    }
}

/// What the record of the batch in flight holds (`inflight.ckpt` in the directory store).
public enum InflightStatus: Sendable, Equatable {
    /// No record: a fresh store, or one whose batch in flight was dropped (`sluice checkpoints set`).
    case absent
    case intact(InflightRecord)
    /// The record exists but fails its checks: why.
    case damaged(String)
}

/// A problem with a progress store, naming what it concerns (a file, for the directory store).
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A commit that loaded, with the state it references, and what was skipped on the way.
public struct LoadedCommit: Sendable {
    public var record: CommitRecord
    /// State by stage name: the whole state, or the base the stage's `deltas` apply to.
    public var states: [String: [UInt8]]
    /// The deltas to apply on top of `states`, in order, by stage name (absent: none).
    public var deltas: [String: [[UInt8]]]
    /// Newer commits that could not be used, and why.
    public var warnings: [String]

    public init(record: CommitRecord, states: [String: [UInt8]], deltas: [String: [[UInt8]]] = [:], warnings: [String] = []) {
        self.record = record
        self.states = states
        self.deltas = deltas
        self.warnings = warnings
    }
}
