import CoreMetrics
import SluiceCore

/// Records one pipeline's batch events as swift-metrics metrics (`docs/metrics.md` names and explains each one): the
/// figures of Spark's Streaming tab as counters and timers, what each stage did, where each source partition stands
/// and how far behind it is, what stateful stages hold, sink retries and plugin errors.
///
/// It never bootstraps the metrics system: the process that owns the backend (the CLI, a server) does, or hands a
/// factory here, so that tests and several pipelines in one process keep their figures apart. Labels are bounded: the
/// pipeline, a stage's, source's or sink's name, a partition number and an ABI call, never a batch id.
public final class MetricsListener: BatchListener, Sendable {
    public let pipeline: String
    /// `pipeline`, then the labels the owner added (`sluice serve`'s batch `id`): on every metric.
    private let labels: [(String, String)]
    /// Metrics whose labels appear with the batches (stages, partitions, components), made on first use.
    private let handles: MetricHandles
    private let batchesCompleted: Counter
    private let batchesFailed: Counter
    private let inputRecords: Counter
    private let discardedRecords: Counter
    private let schedulingDelay: CoreMetrics.Timer
    private let processingTime: CoreMetrics.Timer
    private let totalDelay: CoreMetrics.Timer

    /// - Parameters:
    ///   - factory: the backend; the one the process bootstrapped by default.
    ///   - labels: added after `pipeline` to every metric, for an owner that keeps several runs of one pipeline apart.
    public init(pipeline: String, labels extra: [(String, String)] = [], factory: any MetricsFactory = MetricsSystem.factory) {
        self.pipeline = pipeline
        handles = MetricHandles(factory: factory)
        let labels = [("pipeline", pipeline)] + extra
        self.labels = labels
        // Made up front, so that a pipeline that has not finished a batch yet shows zeros rather than nothing.
        batchesCompleted = handles.counter("sluice_batches_completed_total", labels)
        batchesFailed = handles.counter("sluice_batches_failed_total", labels)
        inputRecords = handles.counter("sluice_input_records_total", labels)
        discardedRecords = handles.counter("sluice_discarded_records_total", labels)
        schedulingDelay = handles.timer("sluice_batch_scheduling_delay_seconds", labels)
        processingTime = handles.timer("sluice_batch_processing_seconds", labels)
        totalDelay = handles.timer("sluice_batch_total_delay_seconds", labels)
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
            let labels = partitionLabels(range.source, range.partition)
            handles.counter("sluice_source_records_total", labels).increment(by: Int64(clamping: range.to - range.from))
            // Committed: the next batch of this partition starts here.
            handles.gauge("sluice_source_partition_position", labels).record(Int64(clamping: range.to))
        }
        for backlog in event.backlog {
            handles.gauge("sluice_source_partition_lag_records", partitionLabels(backlog.source, backlog.partition))
                .record(Int64(clamping: backlog.lag))
        }
        for stage in event.stages {
            let labels = labels + [("stage", stage.stage)]
            handles.counter("sluice_stage_records_in_total", labels).increment(by: stage.recordsIn)
            handles.counter("sluice_stage_records_out_total", labels).increment(by: stage.recordsOut)
            handles.timer("sluice_stage_processing_seconds", labels)
                .recordNanoseconds(Int64(clamping: stage.nanoseconds))
        }
        for state in event.states {
            let labels = labels + [("stage", state.stage)]
            handles.gauge("sluice_state_keys", labels).record(state.keys)
            handles.gauge("sluice_state_memory_bytes", labels).record(state.bytes)
        }
        if let limit = event.rateLimit {
            handles.gauge("sluice_backpressure_rate_limit_records_per_second", labels).record(Int64(limit.rounded()))
        }
        record(event.incidents)
    }

    public func batchFailed(_ event: BatchFailed) {
        batchesFailed.increment()
        record(event.incidents)
    }

    /// Errors and retries count whether the batch completed or not: a retry that worked is still one.
    private func record(_ incidents: BatchIncidents) {
        for (sink, retries) in incidents.sinkRetries {
            handles.counter("sluice_sink_retries_total", labels + [("sink", sink)])
                .increment(by: retries)
        }
        for (call, errors) in incidents.errors {
            let labels = labels + [("component", call.component), ("call", call.call)]
            handles.counter("sluice_plugin_errors_total", labels).increment(by: errors)
        }
    }

    private func partitionLabels(_ source: String, _ partition: Int) -> [(String, String)] {
        labels + [("source", source), ("partition", String(partition))]
    }

    /// Takes every series this listener made off the backend: for an owner that forgets a pipeline.
    public func destroy() { handles.destroyAll() }

    /// swift-metrics timers keep nanoseconds; the events carry fractional milliseconds.
    static func nanoseconds(_ milliseconds: Double) -> Int64 {
        Int64((milliseconds * 1_000_000).rounded())
    }
}
