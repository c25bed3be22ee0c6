import SluiceCore

/// Receives a scheduler's batch events, on the scheduling thread, in order: started, then completed or failed. The
/// progress line is one listener; metrics and a server's statistics are others. A listener must return quickly: the
/// next batch waits for it.
public protocol BatchListener: AnyObject, Sendable {
    func batchStarted(_ event: BatchStarted)
    func batchCompleted(_ event: BatchCompleted)
    func batchFailed(_ event: BatchFailed)
}

extension BatchListener {
    public func batchStarted(_ event: BatchStarted) {}
    public func batchCompleted(_ event: BatchCompleted) {}
    public func batchFailed(_ event: BatchFailed) {}
}

/// The records one batch reads from one source partition: offsets `from..<to` (also what an in-flight record keeps).
public struct SourceRange: Codable, Sendable, Equatable {
    public var source: String
    public var partition: Int
    public var from: UInt64
    public var to: UInt64
    public init(source: String, partition: Int, from: UInt64, to: UInt64) {
        self.source = source
        self.partition = partition
        self.from = from
        self.to = to
    }
}

/// A batch was planned (and, with a store, recorded) and starts reading.
public struct BatchStarted: Sendable, Equatable {
    public var pipeline: String
    public var id: UInt64
    public var timeMilliseconds: Int64
    public var ranges: [SourceRange]
    /// Planned before this start and run again with its recorded ranges.
    public var isReplay: Bool
    /// How late the batch started after it was due.
    public var schedulingDelayMilliseconds: Double
}

/// A batch committed: the numbers Spark's Streaming tab shows.
public struct BatchCompleted: Sendable, Equatable {
    public var pipeline: String
    public var id: UInt64
    public var timeMilliseconds: Int64
    public var ranges: [SourceRange]
    public var records: Int
    public var schedulingDelayMilliseconds: Double
    public var processingMilliseconds: Double
    public var totalDelayMilliseconds: Double
    /// Records an operation could not use and dropped, and the first reason.
    public var discarded: Int
    public var firstDiscardReason: String?
    /// What each stage and sink did, in graph order, then the sinks.
    public var stages: [StageFigures] = []
    /// Every source partition's lag after the batch; empty for a replayed batch, whose ranges were planned before
    /// the start (the source was not asked what it holds).
    public var backlog: [PartitionBacklog] = []
    /// What each stateful stage holds after the batch.
    public var states: [StageState] = []
    /// The records-per-second limit backpressure planned this batch under (nil: no limit, or a replay).
    public var rateLimit: Double?
    /// Calls that returned an error, and sink retries, in the batch (and anything since the last batch event).
    public var incidents = BatchIncidents()

    /// Public so that a process that receives a pipeline's events from elsewhere (`sluice serve`, from its children's
    /// event streams) can hand them to the same listeners.
    public init(
        pipeline: String, id: UInt64, timeMilliseconds: Int64, ranges: [SourceRange], records: Int,
        schedulingDelayMilliseconds: Double, processingMilliseconds: Double, totalDelayMilliseconds: Double,
        discarded: Int, firstDiscardReason: String?, stages: [StageFigures] = [], backlog: [PartitionBacklog] = [],
        states: [StageState] = [], rateLimit: Double? = nil, incidents: BatchIncidents = BatchIncidents()
    ) {
        self.pipeline = pipeline
        self.id = id
        self.timeMilliseconds = timeMilliseconds
        self.ranges = ranges
        self.records = records
        self.schedulingDelayMilliseconds = schedulingDelayMilliseconds
        self.processingMilliseconds = processingMilliseconds
        self.totalDelayMilliseconds = totalDelayMilliseconds
        self.discarded = discarded
        self.firstDiscardReason = firstDiscardReason
        self.stages = stages
        self.backlog = backlog
        self.states = states
        self.rateLimit = rateLimit
        self.incidents = incidents
    }
}

/// A batch failed: nothing of it was committed.
public struct BatchFailed: Sendable, Equatable {
    public var pipeline: String
    public var id: UInt64
    public var timeMilliseconds: Int64
    public var ranges: [SourceRange]
    public var error: String

    public init(
        pipeline: String, id: UInt64, timeMilliseconds: Int64, ranges: [SourceRange], error: String,
        incidents: BatchIncidents = BatchIncidents()
    ) {
        self.pipeline = pipeline
        self.id = id
        self.timeMilliseconds = timeMilliseconds
        self.ranges = ranges
        self.error = error
        self.incidents = incidents
    }

    /// Calls that returned an error (the one that failed the batch among them), and sink retries, in the batch.
    public var incidents = BatchIncidents()
}

/// How far behind a source partition is after a batch: what the source offered when the batch was planned (the end
/// of `available`) against where the next batch starts. Not part of `SourceRange`, whose form in-flight records keep.
public struct PartitionBacklog: Sendable, Equatable {
    public var source: String
    public var partition: Int
    /// Where the next batch of the partition starts: the committed position, or the earliest offset the source
    /// still holds when that is later.
    public var position: UInt64
    /// The end of the range the source's `available` offered for this batch (exclusive).
    public var availableEnd: UInt64

    public init(source: String, partition: Int, position: UInt64, availableEnd: UInt64) {
        self.source = source
        self.partition = partition
        self.position = position
        self.availableEnd = availableEnd
    }

    /// Records offered and not read yet.
    public var lag: UInt64 { availableEnd > position ? availableEnd - position : 0 }
}

/// How much a stateful stage holds after a batch (`StatefulStage.stateKeys` and `stateBytes`).
public struct StageState: Sendable, Equatable {
    public var stage: String
    public var keys: Int
    public var bytes: Int

    public init(stage: String, keys: Int, bytes: Int) {
        self.stage = stage
        self.keys = keys
        self.bytes = bytes
    }
}
