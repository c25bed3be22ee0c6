import CoreMetrics
import MetricsTestKit
import SluiceCore
import SluiceHost
import Synchronization
import Testing

/// The metrics a run records equal what the run did: batches, records, the three delays of every batch, where each
/// source partition stands, and what checkpointing wrote. Each test has its own `TestMetrics` factory (nothing is
/// bootstrapped), so the tests run in parallel.
struct MetricsListenerTests {
    /// Every completed batch's event, the oracle for the timers.
    final class Completed: BatchListener {
        let events = Mutex<[BatchCompleted]>([])
        func batchCompleted(_ event: BatchCompleted) { events.withLock { $0.append(event) } }
    }

    static let pipeline = [("pipeline", "windowed")]
    static let partition = [("pipeline", "windowed"), ("source", "lines"), ("partition", "0")]

    static func nanoseconds(_ milliseconds: [Double]) -> [Int64] { milliseconds.map { Int64(($0 * 1_000_000).rounded()) } }

    @Test func aRunRecordsItsBatchesRecordsDelaysAndPositions() throws {
        let metrics = TestMetrics()
        let completed = Completed()
        let memory = InMemoryProgressStore()
        let store = MeteredProgressStore(memory, pipeline: "windowed", factory: metrics)
        // Two failing writes (recording the plan of batch 0): the scheduler retries them and goes on.
        memory.contents.withLock { $0.failingWrites = 2 }
        let summary = WindowedCounts.scheduler(
            store: store, counts: BatchLog(), lines: BatchLog(),
            listeners: [MetricsListener(pipeline: "windowed", factory: metrics), completed]
        ).runBatches()
        #expect(summary.end == .batchLimit && summary.batches == 6 && summary.records == 18)
        let events = completed.events.withLock { $0 }
        #expect(events.count == 6)

        #expect(try metrics.expectCounter("sluice_batches_completed_total", Self.pipeline).totalValue == 6)
        #expect(try metrics.expectCounter("sluice_batches_failed_total", Self.pipeline).totalValue == 0)
        #expect(try metrics.expectCounter("sluice_input_records_total", Self.pipeline).totalValue == 18)
        #expect(try metrics.expectCounter("sluice_discarded_records_total", Self.pipeline).totalValue == 0)
        // Each batch's delays, in order, exactly as its event gave them.
        let scheduling = try metrics.expectTimer("sluice_batch_scheduling_delay_seconds", Self.pipeline).values
        let processing = try metrics.expectTimer("sluice_batch_processing_seconds", Self.pipeline).values
        let total = try metrics.expectTimer("sluice_batch_total_delay_seconds", Self.pipeline).values
        #expect(scheduling == Self.nanoseconds(events.map(\.schedulingDelayMilliseconds)))
        #expect(processing == Self.nanoseconds(events.map(\.processingMilliseconds)))
        #expect(total == Self.nanoseconds(events.map(\.totalDelayMilliseconds)))
        #expect(processing.allSatisfy { $0 > 0 }, "every batch took some time")
        #expect(zip(total, processing).allSatisfy { $0 >= $1 }, "the total delay includes the processing")

        // 3 records per batch from the one partition; its position after each commit.
        #expect(try metrics.expectCounter("sluice_source_records_total", Self.partition).totalValue == 18)
        #expect(try metrics.expectGauge("sluice_source_partition_position", Self.partition).values == [3, 6, 9, 12, 15, 18])

        // Checkpoints: one timed commit per batch, the window's state as committed, the two failed writes.
        #expect(try metrics.expectTimer("sluice_checkpoint_commit_seconds", Self.pipeline).values.count == 6)
        let states = memory.contents.withLock { c in (0..<6).map { c.states[UInt64($0)]?["window"]?.count ?? -1 } }
        let stage = [("pipeline", "windowed"), ("stage", "window")]
        #expect(try metrics.expectGauge("sluice_checkpoint_state_bytes", stage).values == states.map(Double.init))
        #expect(try metrics.expectCounter("sluice_checkpoint_state_written_bytes_total", Self.pipeline).totalValue == Int64(states.reduce(0, +)))
        #expect(try metrics.expectCounter("sluice_checkpoint_write_failures_total", Self.pipeline).totalValue == 2)
    }

    @Test func aFailedBatchIsCountedAndRecordsNothingElse() throws {
        let metrics = TestMetrics()
        let summary = WindowedCounts.scheduler(
            store: nil, counts: BatchLog(), lines: BatchLog(),
            listeners: [MetricsListener(pipeline: "windowed", factory: metrics)], crashAt: (.ran, 2)
        ).runBatches()
        guard case .failed = summary.end else { Issue.record("no failure: \(summary.end)"); return }
        #expect(try metrics.expectCounter("sluice_batches_completed_total", Self.pipeline).totalValue == 2)
        #expect(try metrics.expectCounter("sluice_batches_failed_total", Self.pipeline).totalValue == 1)
        #expect(try metrics.expectCounter("sluice_input_records_total", Self.pipeline).totalValue == 6)
        #expect(try metrics.expectTimer("sluice_batch_processing_seconds", Self.pipeline).values.count == 2)
        #expect(try metrics.expectGauge("sluice_source_partition_position", Self.partition).lastValue == 6, "the failed batch did not move it")
    }

    @Test func twoPipelinesInOneProcessKeepTheirFiguresApart() throws {
        let metrics = TestMetrics()
        let a = MetricsListener(pipeline: "a", factory: metrics)
        let b = MetricsListener(pipeline: "b", factory: metrics)
        _ = WindowedCounts.scheduler(store: nil, counts: BatchLog(), lines: BatchLog(), batches: 2, listeners: [a]).runBatches()
        _ = WindowedCounts.scheduler(store: nil, counts: BatchLog(), lines: BatchLog(), batches: 4, listeners: [b]).runBatches()
        #expect(try metrics.expectCounter("sluice_batches_completed_total", [("pipeline", "a")]).totalValue == 2)
        #expect(try metrics.expectCounter("sluice_batches_completed_total", [("pipeline", "b")]).totalValue == 4)
    }
}
