import CoreMetrics
import Synchronization

/// The metrics of one recorder, made on first use and kept: a batch records into the same handles as the last one
/// instead of asking the factory again. Labels whose values appear only at run time (a stage's, a partition's) get
/// their handles here; they are bounded by the pipeline's definition.
final class MetricHandles: Sendable {
    let factory: any MetricsFactory
    /// Counter, Gauge and Timer are classes and thread-safe; the table only hands them out.
    private let made = Mutex<[Key: any AnyObject & Sendable]>([:])

    private struct Key: Hashable {
        var kind: ObjectIdentifier
        var label: String
        var dimensions: [String]
    }

    init(factory: any MetricsFactory) { self.factory = factory }

    func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        handle(label, dimensions) { Counter(label: label, dimensions: dimensions, factory: factory) }
    }

    func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        handle(label, dimensions) { Gauge(label: label, dimensions: dimensions, factory: factory) }
    }

    /// A timer that prefers seconds (Prometheus' base unit).
    func timer(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Timer {
        handle(label, dimensions) {
            CoreMetrics.Timer(label: label, dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        }
    }

    /// Takes every metric made here off the backend (a pipeline that is gone leaves no series behind).
    func destroyAll() {
        let all = made.withLock { made in
            defer { made = [:] }
            return Array(made.values)
        }
        for metric in all {
            switch metric {
            case let counter as Counter: counter.destroy()
            case let gauge as Gauge: gauge.destroy()
            case let timer as CoreMetrics.Timer: timer.destroy()
            default: break
            }
        }
    }

    private func handle<Metric: AnyObject & Sendable>(
        _ label: String, _ dimensions: [(String, String)], make: () -> Metric
    ) -> Metric {
        made.withLock { made in
            let flat = dimensions.flatMap { [$0.0, $0.1] }
            let key = Key(kind: ObjectIdentifier(Metric.self), label: label, dimensions: flat)
            if let metric = made[key] as? Metric { return metric }
            let metric = make()
            made[key] = metric
            return metric
        }
    }
}
