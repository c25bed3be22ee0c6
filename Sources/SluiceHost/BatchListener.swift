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
}

/// A batch failed: nothing of it was committed.
public struct BatchFailed: Sendable, Equatable {
    public var pipeline: String
    public var id: UInt64
    public var timeMilliseconds: Int64
    public var ranges: [SourceRange]
    public var error: String
}
