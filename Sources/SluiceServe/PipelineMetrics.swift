import CoreMetrics
import SluiceCore
import SluiceHost

/// One batch's metrics on the server's registry: its child's event stream turned back into batch events and handed to
/// the same `MetricsListener` `sluice run` records with (`docs/metrics.md`), labelled by `pipeline` (the batch's name)
/// and `id` (the batch id, so two batches of one pipeline stay apart), plus the supervision figures (restarts,
/// resident memory). Removed from the registry when the batch is deleted.
final class PipelineMetrics: Sendable {
    private let pipeline: String
    private let listener: MetricsListener
    let restarts: Counter
    let residentBytes: Gauge

    init(pipeline: String, id: Int, factory: any MetricsFactory) {
        self.pipeline = pipeline
        let labels = [("id", String(id))]
        listener = MetricsListener(pipeline: pipeline, labels: labels, factory: factory)
        restarts = Counter(label: "sluice_serve_restarts_total", dimensions: [("pipeline", pipeline)] + labels, factory: factory)
        residentBytes = Gauge(label: "sluice_serve_resident_bytes", dimensions: [("pipeline", pipeline)] + labels, factory: factory)
    }

    func record(_ line: BatchEventLine) {
        switch line.event {
        case .hello, .batchStarted:
            return
        case .batchFailed:
            listener.batchFailed(
                BatchFailed(
                    pipeline: pipeline, id: line.id ?? 0, timeMilliseconds: line.timeMilliseconds ?? 0, ranges: line.ranges ?? [],
                    error: line.error ?? "", incidents: Self.incidents(line)
                )
            )
        case .batchCompleted:
            listener.batchCompleted(
                BatchCompleted(
                    pipeline: pipeline, id: line.id ?? 0, timeMilliseconds: line.timeMilliseconds ?? 0, ranges: line.ranges ?? [],
                    records: line.records ?? 0, schedulingDelayMilliseconds: line.schedulingDelayMilliseconds ?? 0,
                    processingMilliseconds: line.processingMilliseconds ?? 0, totalDelayMilliseconds: line.totalDelayMilliseconds ?? 0,
                    discarded: line.discarded ?? 0, firstDiscardReason: line.firstDiscardReason,
                    stages: (line.stages ?? []).map {
                        StageFigures(
                            stage: $0.stage, recordsIn: $0.recordsIn, recordsOut: $0.recordsOut,
                            nanoseconds: UInt64((max(0, $0.milliseconds) * 1_000_000).rounded())
                        )
                    },
                    backlog: (line.backlog ?? []).map {
                        PartitionBacklog(source: $0.source, partition: $0.partition, position: $0.position, availableEnd: $0.availableEnd)
                    },
                    incidents: Self.incidents(line)
                )
            )
        }
    }

    /// Takes every series of this batch off the registry.
    func destroy() {
        listener.destroy()
        restarts.destroy()
        residentBytes.destroy()
    }

    private static func incidents(_ line: BatchEventLine) -> BatchIncidents {
        var errors: [BatchIncidents.Call: Int] = [:]
        for failed in line.errors ?? [] { errors[BatchIncidents.Call(component: failed.component, call: failed.call), default: 0] += failed.count }
        return BatchIncidents(errors: errors, sinkRetries: line.sinkRetries ?? [:])
    }
}
