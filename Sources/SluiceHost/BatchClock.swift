/// The rule that gives every batch id its batch time, kept in every commit record and in the in-flight record so
/// that a batch run again after a crash — even after falling back past damaged records — gets the time of its first
/// attempt, and a sink that names its output by batch time (`files`) replaces that attempt instead of adding to it.
///
/// It is a list of segments, oldest first; each says "from batch `batch` on, batch N is at
/// `timeMilliseconds + (N − batch) × intervalMilliseconds`". A run that starts batches no earlier run planned adds a
/// segment (the wall clock moves on while a pipeline is down, and the interval may have changed); it is recorded in
/// every kept commit before any batch uses it. Times only grow with the batch id, so no two batches share a time.
public struct BatchClock: Codable, Sendable, Equatable {
    public struct Segment: Codable, Sendable, Equatable {
        /// The first batch the segment gives a time to.
        public var batch: UInt64
        /// That batch's time, milliseconds since the Unix epoch.
        public var timeMilliseconds: Int64
        public var intervalMilliseconds: Int64

        public init(batch: UInt64, timeMilliseconds: Int64, intervalMilliseconds: Int64) {
            self.batch = batch
            self.timeMilliseconds = timeMilliseconds
            self.intervalMilliseconds = intervalMilliseconds
        }
    }

    /// Ascending by `batch`.
    public private(set) var segments: [Segment]

    public init(segments: [Segment] = []) {
        self.segments = segments.sorted { $0.batch < $1.batch }
    }

    /// The time of `batch`, or nil when no segment reaches back to it.
    public func time(of batch: UInt64) -> Int64? {
        guard let segment = segments.last(where: { $0.batch <= batch }) else { return nil }
        let (steps, overflow) = Int64(clamping: batch - segment.batch).multipliedReportingOverflow(by: segment.intervalMilliseconds)
        let (time, overflow2) = segment.timeMilliseconds.addingReportingOverflow(steps)
        return overflow || overflow2 ? .max : time
    }

    /// From `batch` on, batch N is at `time + (N − batch) × interval`; segments that started at or after `batch` are
    /// dropped (no batch was ever planned with them, or the caller would not start one there).
    public mutating func start(at batch: UInt64, time: Int64, interval: Int64) {
        segments.removeAll { $0.batch >= batch }
        segments.append(Segment(batch: batch, timeMilliseconds: time, intervalMilliseconds: max(1, interval)))
    }

    /// The segments that give a time to `batch` or a later one: what a record of batch `batch` must carry.
    public func from(_ batch: UInt64) -> BatchClock {
        guard let first = segments.lastIndex(where: { $0.batch <= batch }) else { return self }
        return BatchClock(segments: Array(segments[first...]))
    }

    /// One line per segment, for `sluice checkpoints show`.
    public var summary: [String] {
        segments.map { "from batch \($0.batch): \($0.timeMilliseconds) ms, every \($0.intervalMilliseconds) ms" }
    }
}
