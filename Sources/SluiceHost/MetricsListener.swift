import CoreMetrics
import Synchronization

/// Records one pipeline's batch events as swift-metrics metrics (`docs/metrics.md` names and explains each one): the
/// figures of Spark's Streaming tab as counters and timers, and where each source partition stands.
///
/// It never bootstraps the metrics system: the process that owns the backend (the CLI, a server) does, or hands a
/// factory here, so that tests and several pipelines in one process keep their figures apart. Labels are bounded: the
/// pipeline, and a source's name and partition, never a batch id.
public final class MetricsListener: BatchListener, Sendable {
    public let pipeline: String
    private let factory: any MetricsFactory
    private let batchesCompleted: Counter
    private let batchesFailed: Counter
    private let inputRecords: Counter
    private let discardedRecords: Counter
    private let schedulingDelay: CoreMetrics.Timer
    private let processingTime: CoreMetrics.Timer
    private let totalDelay: CoreMetrics.Timer
    /// Made on the first batch that reads a partition; partitions come and go only with the pipeline's sources.
    private let partitions = Mutex<[PartitionLabels: PartitionMetrics]>([:])

    private struct PartitionLabels: Hashable {
        var source: String
        var partition: Int
    }

    private struct PartitionMetrics {
        var records: Counter
        var position: Gauge
    }

    /// - Parameter factory: the backend; the one the process bootstrapped by default.
    public init(pipeline: String, factory: any MetricsFactory = MetricsSystem.factory) {
        self.pipeline = pipeline
        self.factory = factory
        let labels = [("pipeline", pipeline)]
        // Made up front, so that a pipeline that has not finished a batch yet shows zeros rather than nothing.
        batchesCompleted = Counter(label: "sluice_batches_completed_total", dimensions: labels, factory: factory)
        batchesFailed = Counter(label: "sluice_batches_failed_total", dimensions: labels, factory: factory)
        inputRecords = Counter(label: "sluice_input_records_total", dimensions: labels, factory: factory)
        discardedRecords = Counter(label: "sluice_discarded_records_total", dimensions: labels, factory: factory)
        schedulingDelay = CoreMetrics.Timer(
            label: "sluice_batch_scheduling_delay_seconds", dimensions: labels, preferredDisplayUnit: .seconds, factory: factory
        )
        processingTime = CoreMetrics.Timer(
            label: "sluice_batch_processing_seconds", dimensions: labels, preferredDisplayUnit: .seconds, factory: factory
        )
        totalDelay = CoreMetrics.Timer(label: "sluice_batch_total_delay_seconds", dimensions: labels, preferredDisplayUnit: .seconds, factory: factory)
    }

    /// The three delays are recorded for completed batches only, as Spark's Streaming tab shows them: a failed
    /// batch's processing time says nothing about the pipeline's pace, and the run stops after it.
    public func batchCompleted(_ event: BatchCompleted) {
        batchesCompleted.increment()
        inputRecords.increment(by: event.records)
        discardedRecords.increment(by: event.discarded)
        schedulingDelay.recordNanoseconds(Self.nanoseconds(event.schedulingDelayMilliseconds))
        processingTime.recordNanoseconds(Self.nanoseconds(event.processingMilliseconds))
        totalDelay.recordNanoseconds(Self.nanoseconds(event.totalDelayMilliseconds))
        for range in event.ranges {
            let metrics = partitionMetrics(source: range.source, partition: range.partition)
            metrics.records.increment(by: Int64(clamping: range.to - range.from))
            // Committed: the next batch of this partition starts here.
            metrics.position.record(Int64(clamping: range.to))
        }
    }

    public func batchFailed(_ event: BatchFailed) {
        batchesFailed.increment()
    }

    private func partitionMetrics(source: String, partition: Int) -> PartitionMetrics {
        partitions.withLock { made in
            let key = PartitionLabels(source: source, partition: partition)
            if let metrics = made[key] { return metrics }
            let labels = [("pipeline", pipeline), ("source", source), ("partition", String(partition))]
            let metrics = PartitionMetrics(
                records: Counter(label: "sluice_source_records_total", dimensions: labels, factory: factory),
                position: Gauge(label: "sluice_source_partition_position", dimensions: labels, factory: factory)
            )
            made[key] = metrics
            return metrics
        }
    }

    /// swift-metrics timers keep nanoseconds; the events carry fractional milliseconds.
    static func nanoseconds(_ milliseconds: Double) -> Int64 {
        Int64((milliseconds * 1_000_000).rounded())
    }
}
