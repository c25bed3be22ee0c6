public import SluiceHost
import SluiceCore

/// One line of the event stream a `sluice run` child writes for its server (`--events-fd`): a JSON object per line,
/// `event` naming what it is. Both ends use this type, so the format lives in one place.
///
/// `hello` comes first, once the pipeline's plugins are loaded and its scheduler is about to start; then the
/// scheduler's batch events in order. Fields that do not belong to an event are absent.
public struct BatchEventLine: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case hello, batchStarted, batchCompleted, batchFailed
    }

    public var event: Kind
    public var pipeline: String
    /// `hello` only.
    public var batchIntervalMilliseconds: Int?
    public var pid: Int32?
    /// Batch events.
    public var id: UInt64?
    public var timeMilliseconds: Int64?
    public var ranges: [SourceRange]?
    public var isReplay: Bool?
    public var records: Int?
    public var schedulingDelayMilliseconds: Double?
    public var processingMilliseconds: Double?
    public var totalDelayMilliseconds: Double?
    public var discarded: Int?
    public var firstDiscardReason: String?
    public var error: String?
    /// `batchCompleted`: what each stage and sink did, and how far behind each source partition is after the batch
    /// (absent for a replayed batch, whose ranges were planned before the start).
    public var stages: [Stage]?
    public var backlog: [Backlog]?
    /// `batchCompleted` and `batchFailed`: calls into components that returned an error, and sink retries, in the
    /// batch (absent when there were none).
    public var errors: [CallErrors]?
    public var sinkRetries: [String: Int]?

    public struct CallErrors: Codable, Sendable, Equatable {
        public var component: String
        /// One of the ABI's calls: `read`, `transform`, `commit`, …
        public var call: String
        public var count: Int
    }

    public struct Stage: Codable, Sendable, Equatable {
        public var stage: String
        public var recordsIn: Int
        public var recordsOut: Int
        public var milliseconds: Double
    }

    public struct Backlog: Codable, Sendable, Equatable {
        public var source: String
        public var partition: Int
        /// Where the partition's next batch starts.
        public var position: UInt64
        /// The end of what the source offered (exclusive).
        public var availableEnd: UInt64
        public var lag: UInt64
    }

    public init(event: Kind, pipeline: String) {
        self.event = event
        self.pipeline = pipeline
    }

    public init(_ started: BatchStarted) {
        self.init(event: .batchStarted, pipeline: started.pipeline)
        id = started.id
        timeMilliseconds = started.timeMilliseconds
        ranges = started.ranges
        isReplay = started.isReplay
        schedulingDelayMilliseconds = started.schedulingDelayMilliseconds
    }

    public init(_ completed: BatchCompleted) {
        self.init(event: .batchCompleted, pipeline: completed.pipeline)
        id = completed.id
        timeMilliseconds = completed.timeMilliseconds
        ranges = completed.ranges
        records = completed.records
        schedulingDelayMilliseconds = completed.schedulingDelayMilliseconds
        processingMilliseconds = completed.processingMilliseconds
        totalDelayMilliseconds = completed.totalDelayMilliseconds
        discarded = completed.discarded
        firstDiscardReason = completed.firstDiscardReason
        stages = completed.stages.map {
            Stage(stage: $0.stage, recordsIn: $0.recordsIn, recordsOut: $0.recordsOut, milliseconds: Double($0.nanoseconds) / 1e6)
        }
        backlog = completed.backlog.map {
            Backlog(source: $0.source, partition: $0.partition, position: $0.position, availableEnd: $0.availableEnd, lag: $0.lag)
        }
        setIncidents(completed.incidents)
    }

    public init(_ failed: BatchFailed) {
        self.init(event: .batchFailed, pipeline: failed.pipeline)
        id = failed.id
        timeMilliseconds = failed.timeMilliseconds
        ranges = failed.ranges
        error = failed.error
        setIncidents(failed.incidents)
    }

    private mutating func setIncidents(_ incidents: BatchIncidents) {
        guard !incidents.isEmpty else { return }
        errors = incidents.errors.map { CallErrors(component: $0.key.component, call: $0.key.call, count: $0.value) }
            .sorted { ($0.component, $0.call) < ($1.component, $1.call) }
        sinkRetries = incidents.sinkRetries.isEmpty ? nil : incidents.sinkRetries
    }
}
