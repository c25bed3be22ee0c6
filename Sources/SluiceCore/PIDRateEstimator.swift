/// Spark Streaming's backpressure rate estimator (`PIDRateEstimator`): after each completed batch, a new maximum
/// ingestion rate in records per second, from how fast the batch was processed and how late it started.
///
/// With `n` records processed in `p` ms, scheduled `s` ms late, at interval `I` ms:
/// `processingRate = n / p × 1000`, `error = latestRate − processingRate`,
/// `historicalError = s × processingRate / I` (the backlog the delay stands for, as a rate),
/// `dError = (error − latestError) / elapsed seconds`, and
/// `rate = max(latestRate − kp·error − ki·historicalError − kd·dError, minRate)`.
/// The first batch only records its processing rate; batches without records or processing time, or not later than
/// the last update, change nothing — Spark's rules, so a pipeline tuned for Spark behaves the same here.
public struct PIDRateEstimator: Sendable, Equatable {
    public var proportional: Double
    public var integral: Double
    public var derivative: Double
    public var minRate: Double
    public let batchIntervalMilliseconds: Double

    private var firstRun = true
    private var latestTime: Int64 = -1
    private var latestRate: Double = -1
    private var latestError: Double = -1

    /// Spark's defaults: proportional 1.0, integral 0.2, derivative 0, minimum rate 100 records/s.
    public init(
        batchIntervalMilliseconds: Int,
        proportional: Double = 1.0,
        integral: Double = 0.2,
        derivative: Double = 0.0,
        minRate: Double = 100
    ) {
        precondition(batchIntervalMilliseconds > 0, "the batch interval must be positive")
        precondition(proportional >= 0 && integral >= 0 && derivative >= 0, "PID gains must not be negative")
        precondition(minRate > 0, "the minimum rate must be positive")
        self.batchIntervalMilliseconds = Double(batchIntervalMilliseconds)
        self.proportional = proportional
        self.integral = integral
        self.derivative = derivative
        self.minRate = minRate
    }

    /// The new rate (records/s) after a batch completed at `time` (ms), or nil when this batch sets none.
    public mutating func compute(
        time: Int64, records: Int, processingMilliseconds: Double, schedulingDelayMilliseconds: Double
    ) -> Double? {
        guard time > latestTime, records > 0, processingMilliseconds > 0 else { return nil }
        let elapsedSeconds = Double(time - latestTime) / 1000
        let processingRate = Double(records) / processingMilliseconds * 1000
        let error = latestRate - processingRate
        let historicalError = schedulingDelayMilliseconds * processingRate / batchIntervalMilliseconds
        let dError = (error - latestError) / elapsedSeconds
        let rate = max(latestRate - proportional * error - integral * historicalError - derivative * dError, minRate)
        latestTime = time
        if firstRun {
            latestRate = processingRate
            latestError = 0
            firstRun = false
            return nil
        }
        latestRate = rate
        latestError = error
        return rate
    }
}
