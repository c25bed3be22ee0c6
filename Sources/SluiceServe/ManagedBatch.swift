import Foundation
import Synchronization

/// A submitted batch as the server holds it: its record, its child process while one runs, its log and its
/// statistics, under one lock. The supervisor decides; this holds.
final class ManagedBatch: Sendable {
    let id: Int
    let metrics: PipelineMetrics
    let live: Mutex<Live>

    struct Live: Sendable {
        var record: BatchRecord
        var child: ChildProcess?
        /// A DELETE asked for the stop: the end is `killed`, whatever the exit status.
        var stopRequested = false
        /// Waiting out a restart back-off (`restart: on-failure`).
        var restartPending = false
        /// Failures since the last completed batch: the back-off grows with them.
        var failuresInARow = 0
        /// Set when the memory watch killed the child: its resident size then.
        var memoryExceededBytes: Int64?
        var log: LogTail
        var statistics: BatchStatistics
        /// When the current child started.
        var startedAt: Date?
        /// DELETEs waiting for the child to end.
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    init(record: BatchRecord, metrics: PipelineMetrics, log: LogTail, statistics: BatchStatistics) {
        id = record.id
        self.metrics = metrics
        live = Mutex(Live(record: record, log: log, statistics: statistics))
    }
}
