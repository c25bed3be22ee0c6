import CoreMetrics
import Foundation
import MetricsTestKit
import SluiceCore
import SluiceHost
import SluiceLoader
import SluiceSDK
import Synchronization
import Testing

/// The metrics a run records equal what the run did: batches, records, the three delays of every batch, where each
/// source partition stands and its lag, what each stage did, what state holds, sink retries and plugin errors, and
/// what checkpointing wrote. Each test has its own `TestMetrics` factory (nothing is
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

    /// What each stage did, each partition's lag and what the window holds, batch by batch: 18 lines, 3 a batch, into
    /// a two-batch window of counts by value (the lines repeat every 12, so any 6 in a row are distinct).
    @Test func stagesLagAndStateAreRecordedPerBatch() throws {
        let metrics = TestMetrics()
        let completed = Completed()
        let counts = BatchLog()
        let summary = WindowedCounts.scheduler(
            store: nil, counts: counts, lines: BatchLog(), listeners: [MetricsListener(pipeline: "windowed", factory: metrics), completed]
        ).runBatches()
        #expect(summary.end == .batchLimit && summary.batches == 6)

        func stage(_ name: String) -> [(String, String)] { [("pipeline", "windowed"), ("stage", name)] }
        // The window emits every batch's window: its rows are what it passed on, and what the sink `counts` got.
        let emitted = Int64(counts.batches.values.reduce(0) { $0 + $1.count })
        #expect(emitted == 3 + 5 * 6)
        let expected: [(stage: String, in: Int64, out: Int64)] = [("lines", 18, 18), ("window", 18, emitted), ("counts", emitted, emitted), ("all", 18, 18)]
        for (name, recordsIn, recordsOut) in expected {
            #expect(try metrics.expectCounter("sluice_stage_records_in_total", stage(name)).totalValue == recordsIn, "\(name)")
            #expect(try metrics.expectCounter("sluice_stage_records_out_total", stage(name)).totalValue == recordsOut, "\(name)")
            let times = try metrics.expectTimer("sluice_stage_processing_seconds", stage(name)).values
            #expect(times.count == 6 && times.allSatisfy { $0 > 0 }, "\(name): one time per batch, each spent: \(times)")
        }
        // The events carried the same figures, stage by stage, in graph order then the sinks.
        let events = completed.events.withLock { $0 }
        #expect(events.allSatisfy { $0.stages.map(\.stage) == ["lines", "window", "counts", "all"] })
        #expect(events.map { $0.stages[0].recordsIn } == [3, 3, 3, 3, 3, 3])

        // The source offers all 18 lines from the start: what is left after each batch.
        #expect(try metrics.expectGauge("sluice_source_partition_lag_records", Self.partition).values == [15, 12, 9, 6, 3, 0])
        // A window without an inverse holds each batch's keys: 3 after the first batch, then two batches' worth.
        #expect(try metrics.expectGauge("sluice_state_keys", stage("window")).values == [3, 6, 6, 6, 6, 6])
        #expect(try metrics.expectGauge("sluice_state_memory_bytes", stage("window")).values.allSatisfy { $0 > 0 })
        // Nothing failed: no error or retry counter was made.
        #expect(metrics.counters.allSatisfy { !$0.label.hasPrefix("sluice_plugin_errors") && !$0.label.hasPrefix("sluice_sink_retries") })
    }

    /// A `window` stage keeps records, not keys: its state is the records of the batches it holds, and their bytes
    /// (the text, and one 4-byte offset per record plus one). It collects 3 records a batch and emits its window.
    @Test func aWindowOfRecordsReportsTheRecordsItHoldsAndTheirBytes() throws {
        let lines = (0..<12).map { "line \($0)" }
        var graph = StreamGraph()
        let input = graph.add("lines", .source(FixedLines(lines), maxRecordsPerPartition: 3))
        let window = graph.add("last2", .collecting(WindowStage(window: 2, slide: 1), inputs: [input]))
        graph.addSink(.init(name: "out", sink: BatchLog(), input: window))
        var options = SchedulerOptions(pipeline: "records", batchIntervalMilliseconds: 1)
        options.maxBatches = 4
        let metrics = TestMetrics()
        let summary = PipelineScheduler(graph: graph, options: options, listeners: [MetricsListener(pipeline: "records", factory: metrics)])
            .runBatches()
        #expect(summary.end == .batchLimit && summary.batches == 4)
        let stage = [("pipeline", "records"), ("stage", "last2")]
        #expect(try metrics.expectGauge("sluice_state_keys", stage).values == [3, 6, 6, 6])
        // Batch n holds lines 3n..<3n+3; the window, the last two batches.
        func bytes(_ batch: Int) -> Int { lines[(3 * batch)..<(3 * batch + 3)].reduce(0) { $0 + $1.utf8.count } + 4 * 4 }
        let held = [bytes(0), bytes(0) + bytes(1), bytes(1) + bytes(2), bytes(2) + bytes(3)]
        #expect(try metrics.expectGauge("sluice_state_memory_bytes", stage).values == held.map(Double.init))
        #expect(try metrics.expectCounter("sluice_stage_records_in_total", stage).totalValue == 12)
        #expect(try metrics.expectCounter("sluice_stage_records_out_total", stage).totalValue == 3 + 6 + 6 + 6)
        #expect(try metrics.expectCounter("sluice_stage_records_in_total", [("pipeline", "records"), ("stage", "out")]).totalValue == 21)
    }

    /// A sink's RETRY: each is a plugin error of its `commit` and a retry, in a batch that completes.
    @Test func sinkRetriesAndTheirErrorsAreCounted() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plugin = try PluginLoader.load(path: try PluginLoaderTests.compile("retry_sink.c", into: directory, as: "libretry"))
        let sink = try PluginInstance(plugin: plugin, name: "out", configJSON: #"{"failures": 2}"#, log: { _, _, _ in })
        var graph = StreamGraph()
        let input = graph.add("lines", .source(FixedLines(["a", "b", "c"]), maxRecordsPerPartition: 10))
        graph.addSink(.init(name: "out", sink: sink, input: input))
        var options = SchedulerOptions(pipeline: "retrying", batchIntervalMilliseconds: 1)
        options.maxBatches = 2
        let metrics = TestMetrics()
        let summary = PipelineScheduler(graph: graph, options: options, listeners: [MetricsListener(pipeline: "retrying", factory: metrics)]).runBatches()
        #expect(summary.end == .batchLimit && summary.batches == 2)
        #expect(try metrics.expectCounter("sluice_sink_retries_total", [("pipeline", "retrying"), ("sink", "out")]).totalValue == 2)
        let errors = [("pipeline", "retrying"), ("component", "out"), ("call", "commit")]
        #expect(try metrics.expectCounter("sluice_plugin_errors_total", errors).totalValue == 2)
        #expect(try metrics.expectCounter("sluice_batches_failed_total", [("pipeline", "retrying")]).totalValue == 0)
        // The sink's time is in its calls: both batches timed, the retries' waits left out.
        #expect(try metrics.expectTimer("sluice_stage_processing_seconds", [("pipeline", "retrying"), ("stage", "out")]).values.count == 2)
    }

    /// A transform that fails in every task fails the batch: each failed call is counted, under its stage and call.
    @Test func aFailingTransformIsCountedAsAPluginError() throws {
        var graph = StreamGraph()
        // Two partitions: two read tasks, both fail in the transform.
        let input = graph.add("lines", .source(TwoPartitions(), maxRecordsPerPartition: 10))
        let failing = graph.add("upper", .transform(Failing(), input: input))
        graph.addSink(.init(name: "out", sink: BatchLog(), input: failing))
        var options = SchedulerOptions(pipeline: "failing", batchIntervalMilliseconds: 1)
        options.maxBatches = 1
        options.parallelism = 2
        let metrics = TestMetrics()
        let summary = PipelineScheduler(graph: graph, options: options, listeners: [MetricsListener(pipeline: "failing", factory: metrics)]).runBatches()
        guard case .failed = summary.end else { Issue.record("no failure: \(summary.end)"); return }
        #expect(try metrics.expectCounter("sluice_batches_failed_total", [("pipeline", "failing")]).totalValue == 1)
        let errors = [("pipeline", "failing"), ("component", "upper"), ("call", "transform")]
        #expect(try metrics.expectCounter("sluice_plugin_errors_total", errors).totalValue == 2)
    }

    final class Failing: BatchTransform {
        struct Refused: Error {}
        func transform(_ input: OwnedBatch) throws -> OwnedBatch { throw Refused() }
    }

    /// Two partitions of one line each.
    final class TwoPartitions: BatchSource {
        func partitionCount() throws -> Int { 2 }
        func available(partition: Int) throws -> Range<UInt64> { 0..<1 }
        func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
            var builder = BatchBuilder()
            builder.append("line \(partition)")
            return OwnedBatch(builder)
        }
        func commit(partition: Int, upTo offset: UInt64) throws {}
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
