import CoreMetrics
import SluiceHost
import Synchronization

/// One batch's metrics on the server's registry, from its child's event stream: the names and meanings of
/// `MetricsListener` (`docs/metrics.md`), labelled by `pipeline` (the batch's name) and `id` (the batch id, so two
/// batches of one pipeline stay apart), plus the supervision figures (restarts, resident memory).
///
/// `MetricsListener` itself cannot be fed here: its events have no public initialiser outside SluiceHost, so this
/// records the same figures from the decoded lines. Removed from the registry when the batch is deleted.
final class PipelineMetrics: Sendable {
    private let labels: [(String, String)]
    private let factory: any MetricsFactory
    private let batchesCompleted: Counter
    private let batchesFailed: Counter
    private let inputRecords: Counter
    private let discardedRecords: Counter
    private let schedulingDelay: CoreMetrics.Timer
    private let processingTime: CoreMetrics.Timer
    private let totalDelay: CoreMetrics.Timer
    let restarts: Counter
    let residentBytes: Gauge
    private let partitions = Mutex<[String: PartitionMetrics]>([:])
    private let stages = Mutex<[String: StageMetrics]>([:])
    /// Made on the first incident of each kind: `sluice_plugin_errors_total`, `sluice_sink_retries_total`.
    private let incidents = Mutex<[String: Counter]>([:])

    private struct PartitionMetrics {
        var records: Counter
        var position: Gauge
        var lag: Gauge
    }

    private struct StageMetrics {
        var recordsIn: Counter
        var recordsOut: Counter
        var time: CoreMetrics.Timer
    }

    init(pipeline: String, id: Int, factory: any MetricsFactory) {
        labels = [("pipeline", pipeline), ("id", String(id))]
        self.factory = factory
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
        totalDelay = CoreMetrics.Timer(
            label: "sluice_batch_total_delay_seconds", dimensions: labels, preferredDisplayUnit: .seconds, factory: factory
        )
        restarts = Counter(label: "sluice_serve_restarts_total", dimensions: labels, factory: factory)
        residentBytes = Gauge(label: "sluice_serve_resident_bytes", dimensions: labels, factory: factory)
    }

    func record(_ line: BatchEventLine) {
        switch line.event {
        case .hello, .batchStarted:
            return
        case .batchFailed:
            batchesFailed.increment()
            recordIncidents(line)
        case .batchCompleted:
            recordIncidents(line)
            batchesCompleted.increment()
            inputRecords.increment(by: line.records ?? 0)
            discardedRecords.increment(by: line.discarded ?? 0)
            schedulingDelay.recordNanoseconds(Self.nanoseconds(line.schedulingDelayMilliseconds))
            processingTime.recordNanoseconds(Self.nanoseconds(line.processingMilliseconds))
            totalDelay.recordNanoseconds(Self.nanoseconds(line.totalDelayMilliseconds))
            for range in line.ranges ?? [] {
                let metrics = partition(source: range.source, partition: range.partition)
                metrics.records.increment(by: Int64(clamping: range.to >= range.from ? range.to - range.from : 0))
                metrics.position.record(Int64(clamping: range.to))
            }
            for backlog in line.backlog ?? [] {
                partition(source: backlog.source, partition: backlog.partition).lag.record(Int64(clamping: backlog.lag))
            }
            for figures in line.stages ?? [] {
                let metrics = stage(figures.stage)
                metrics.recordsIn.increment(by: figures.recordsIn)
                metrics.recordsOut.increment(by: figures.recordsOut)
                metrics.time.recordNanoseconds(Self.nanoseconds(figures.milliseconds))
            }
        }
    }

    /// Takes every series of this batch off the registry.
    func destroy() {
        for counter in [batchesCompleted, batchesFailed, inputRecords, discardedRecords, restarts] { counter.destroy() }
        for timer in [schedulingDelay, processingTime, totalDelay] { timer.destroy() }
        residentBytes.destroy()
        partitions.withLock { made in
            for metrics in made.values {
                metrics.records.destroy()
                metrics.position.destroy()
                metrics.lag.destroy()
            }
            made = [:]
        }
        incidents.withLock { made in
            for counter in made.values { counter.destroy() }
            made = [:]
        }
        stages.withLock { made in
            for metrics in made.values {
                metrics.recordsIn.destroy()
                metrics.recordsOut.destroy()
                metrics.time.destroy()
            }
            made = [:]
        }
    }

    private func partition(source: String, partition: Int) -> PartitionMetrics {
        partitions.withLock { made in
            let key = "\(source)\u{0}\(partition)"
            if let metrics = made[key] { return metrics }
            let dimensions = labels + [("source", source), ("partition", String(partition))]
            let metrics = PartitionMetrics(
                records: Counter(label: "sluice_source_records_total", dimensions: dimensions, factory: factory),
                position: Gauge(label: "sluice_source_partition_position", dimensions: dimensions, factory: factory),
                lag: Gauge(label: "sluice_source_partition_lag_records", dimensions: dimensions, factory: factory)
            )
            made[key] = metrics
            return metrics
        }
    }

    private func recordIncidents(_ line: BatchEventLine) {
        for errors in line.errors ?? [] {
            counter("sluice_plugin_errors_total", [("component", errors.component), ("call", errors.call)]).increment(by: errors.count)
        }
        for (sink, retries) in line.sinkRetries ?? [:] {
            counter("sluice_sink_retries_total", [("sink", sink)]).increment(by: retries)
        }
    }

    private func counter(_ label: String, _ extra: [(String, String)]) -> Counter {
        incidents.withLock { made in
            let key = ([label] + extra.flatMap { [$0.0, $0.1] }).joined(separator: "\u{0}")
            if let counter = made[key] { return counter }
            let counter = Counter(label: label, dimensions: labels + extra, factory: factory)
            made[key] = counter
            return counter
        }
    }

    private func stage(_ name: String) -> StageMetrics {
        stages.withLock { made in
            if let metrics = made[name] { return metrics }
            let dimensions = labels + [("stage", name)]
            let metrics = StageMetrics(
                recordsIn: Counter(label: "sluice_stage_records_in_total", dimensions: dimensions, factory: factory),
                recordsOut: Counter(label: "sluice_stage_records_out_total", dimensions: dimensions, factory: factory),
                time: CoreMetrics.Timer(
                    label: "sluice_stage_processing_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds,
                    factory: factory
                )
            )
            made[name] = metrics
            return metrics
        }
    }

    private static func nanoseconds(_ milliseconds: Double?) -> Int64 {
        Int64(((milliseconds ?? 0) * 1_000_000).rounded())
    }
}
