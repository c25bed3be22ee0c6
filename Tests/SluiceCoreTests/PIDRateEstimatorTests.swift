import SluiceCore
import Testing

/// The estimator against Spark's formula, worked by hand (1 s interval, Spark's gains 1.0, 0.2, 0).
struct PIDRateEstimatorTests {
    @Test func theFirstBatchOnlyMeasuresThenTheRateFollowsTheFormula() {
        var estimator = PIDRateEstimator(batchIntervalMilliseconds: 1000)
        // 1000 records in 500 ms: 2000 records/s, remembered; no rate yet.
        #expect(estimator.compute(time: 1000, records: 1000, processingMilliseconds: 500, schedulingDelayMilliseconds: 0) == nil)
        // 1000 records/s, 500 ms late: error 2000 − 1000 = 1000, historical 500 × 1000 / 1000 = 500:
        // 2000 − 1.0 × 1000 − 0.2 × 500 = 900.
        #expect(estimator.compute(time: 2000, records: 1000, processingMilliseconds: 1000, schedulingDelayMilliseconds: 500) == 900)
        // 2000 records/s on time: error 900 − 2000 = −1100: 900 + 1100 = 2000.
        #expect(estimator.compute(time: 3000, records: 900, processingMilliseconds: 450, schedulingDelayMilliseconds: 0) == 2000)
        // Spark ignores a batch not later than the last, without records, or without processing time.
        #expect(estimator.compute(time: 3000, records: 900, processingMilliseconds: 450, schedulingDelayMilliseconds: 0) == nil)
        #expect(estimator.compute(time: 3500, records: 0, processingMilliseconds: 450, schedulingDelayMilliseconds: 0) == nil)
        #expect(estimator.compute(time: 3500, records: 10, processingMilliseconds: 0, schedulingDelayMilliseconds: 0) == nil)
        // 10 records/s, 100 s late: 2000 − 1990 − 0.2 × 1000 < 0, so the minimum rate.
        #expect(estimator.compute(time: 4000, records: 10, processingMilliseconds: 1000, schedulingDelayMilliseconds: 100_000) == 100)
    }

    @Test func theDerivativeTermUsesTheErrorsChangeOverTheTimeSinceTheLastUpdate() {
        var estimator = PIDRateEstimator(batchIntervalMilliseconds: 500, proportional: 0.5, integral: 0, derivative: 0.1, minRate: 1)
        _ = estimator.compute(time: 500, records: 100, processingMilliseconds: 100, schedulingDelayMilliseconds: 0)  // 1000/s
        // 400/s: error 600, dError (600 − 0) / 0.5 s = 1200: 1000 − 0.5 × 600 − 0.1 × 1200 = 580.
        #expect(estimator.compute(time: 1000, records: 100, processingMilliseconds: 250, schedulingDelayMilliseconds: 0) == 580)
        // 800/s two seconds later: error −220, dError (−220 − 600) / 2 = −410: 580 + 110 + 41 = 731.
        let rate = estimator.compute(time: 3000, records: 200, processingMilliseconds: 250, schedulingDelayMilliseconds: 0)
        #expect(abs((rate ?? 0) - 731) < 1e-9)
    }
}
