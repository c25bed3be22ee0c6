/// Spark Streaming's backpressure (`spark.streaming.backpressure.*`): after each batch a PID estimator sets the
/// records per second the next batches may take, so a pipeline fed faster than it can process keeps its delay
/// bounded instead of planning ever larger batches. The pipeline file's `backpressure:` block.
public struct BackpressureConfiguration: Sendable, Equatable {
    /// The rate (records/s) before the first estimate; nil takes what `max_records_per_partition` allows.
    public var initialRate: Double?
    /// The estimator never goes below this (records/s).
    public var minRate: Double
    public var proportional: Double
    public var integral: Double
    public var derivative: Double

    /// Spark's defaults: no initial rate, minimum 100 records/s, gains 1.0, 0.2 and 0.
    public init(initialRate: Double? = nil, minRate: Double = 100, proportional: Double = 1.0, integral: Double = 0.2, derivative: Double = 0) {
        self.initialRate = initialRate
        self.minRate = minRate
        self.proportional = proportional
        self.integral = integral
        self.derivative = derivative
    }
}
