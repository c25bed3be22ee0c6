import SluiceCore
import Synchronization

/// Backpressure's two halves: a batch listener that feeds each completed batch to the PID estimator, and the caps
/// the scheduler's planner applies to the next batch — the rate × the batch interval, split over the partitions in
/// proportion to what each has waiting (the direct Kafka stream's rule), at least one record each, and never more
/// than `max_records_per_partition` (the planner keeps the smaller).
public final class RateController: BatchListener, Sendable {
    public let configuration: BackpressureConfiguration
    private let intervalMilliseconds: Int
    private let state: Mutex<(estimator: PIDRateEstimator, rate: Double?)>

    public init(_ configuration: BackpressureConfiguration, batchIntervalMilliseconds: Int) {
        self.configuration = configuration
        intervalMilliseconds = batchIntervalMilliseconds
        let estimator = PIDRateEstimator(
            batchIntervalMilliseconds: batchIntervalMilliseconds, proportional: configuration.proportional,
            integral: configuration.integral, derivative: configuration.derivative, minRate: configuration.minRate
        )
        state = Mutex((estimator, configuration.initialRate))
    }

    /// The limit in force (records/s), nil while there is neither an initial rate nor an estimate.
    public var rate: Double? { state.withLock { $0.rate } }

    public func batchCompleted(_ event: BatchCompleted) {
        // A replayed batch ran with its recorded ranges, not under the limit: what it says about the pace still holds.
        state.withLock { state in
            if let rate = state.estimator.compute(
                time: event.timeMilliseconds, records: event.records, processingMilliseconds: event.processingMilliseconds,
                schedulingDelayMilliseconds: event.schedulingDelayMilliseconds
            ) {
                state.rate = rate
            }
        }
    }

    /// Per-partition record caps for the next batch, for the partitions with something waiting; empty without a rate.
    public func caps(available: [PartitionKey: Range<UInt64>], positions: [PartitionKey: UInt64]) -> [PartitionKey: Int] {
        guard let rate else { return [:] }
        var waiting: [PartitionKey: UInt64] = [:]
        for (key, offered) in available {
            let start = max(positions[key] ?? offered.lowerBound, offered.lowerBound)
            if start < offered.upperBound { waiting[key] = offered.upperBound - start }
        }
        let total = waiting.values.reduce(0.0) { $0 + Double($1) }
        guard total > 0 else { return [:] }
        let budget = rate * Double(intervalMilliseconds) / 1000
        return waiting.mapValues { backlog in max(1, Int((budget * Double(backlog) / total).rounded(.down))) }
    }
}
