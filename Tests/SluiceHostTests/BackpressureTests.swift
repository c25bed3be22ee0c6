import Foundation
import SluiceCore
import SluiceHost
import SluiceSDK
import Synchronization
import Testing

/// Backpressure in the scheduler: each batch is planned under the rate the estimator computed from the batches before
/// it (checked by replaying the run's own events through a fresh estimator), and its caps split the rate over the
/// partitions by their backlog.
struct BackpressureTests {
    /// Keeps every completed batch.
    final class Completed: BatchListener {
        let events = Mutex<[BatchCompleted]>([])
        func batchCompleted(_ event: BatchCompleted) { events.withLock { $0.append(event) } }
    }

    @Test func everyBatchIsPlannedUnderTheRateOfTheBatchesBeforeIt() throws {
        let source = FixedLines((0..<3000).map { "line \($0)" })
        let sink = BatchLog()
        var graph = StreamGraph()
        let input = graph.add("lines", .source(source, maxRecordsPerPartition: 100_000))
        graph.addSink(.init(name: "out", sink: sink, input: input))
        var options = SchedulerOptions(pipeline: "bp", batchIntervalMilliseconds: 20)
        options.untilIdle = true
        options.idleBatches = 1
        let configuration = BackpressureConfiguration(initialRate: 5000, minRate: 100)
        options.backpressure = configuration
        let completed = Completed()
        let scheduler = PipelineScheduler(graph: graph, options: options, listeners: [completed])
        let summary = scheduler.runBatches()
        #expect(summary.records == 3000)

        let events = completed.events.withLock { $0 }
        // The initial rate: 5000 records/s × 20 ms = 100 records, twice (the first batch only measures).
        #expect(events.prefix(2).map(\.records) == [100, 100])
        #expect(events.prefix(2).map(\.rateLimit) == [5000, 5000])
        var estimator = PIDRateEstimator(batchIntervalMilliseconds: 20, minRate: 100)
        var rate: Double? = 5000
        var read = 0
        for event in events {
            #expect(event.rateLimit == rate, "batch \(event.id)")
            if let rate {
                #expect(event.records == min(3000 - read, max(1, Int(rate * 20 / 1000))), "batch \(event.id) under \(rate)/s")
            }
            read += event.records
            if let next = estimator.compute(
                time: event.timeMilliseconds, records: event.records, processingMilliseconds: event.processingMilliseconds,
                schedulingDelayMilliseconds: event.schedulingDelayMilliseconds
            ) {
                rate = next
            }
        }
        #expect(sink.batches.values.reduce(0) { $0 + $1.count } == 3000, "nothing lost")
    }

    @Test func capsSplitTheRateByBacklogWithAtLeastOneRecordEach() {
        let controller = RateController(BackpressureConfiguration(initialRate: 1000), batchIntervalMilliseconds: 100)
        let a = PartitionKey(source: 0, partition: 0)
        let b = PartitionKey(source: 0, partition: 1)
        let c = PartitionKey(source: 1, partition: 0)
        let d = PartitionKey(source: 1, partition: 1)
        // 100 records per batch: a has 300 waiting, b 100, c 1, d nothing.
        let caps = controller.caps(available: [a: 0..<400, b: 50..<150, c: 0..<1, d: 0..<10], positions: [a: 100, d: 10])
        #expect(caps == [a: 74, b: 24, c: 1])
        #expect(RateController(BackpressureConfiguration(), batchIntervalMilliseconds: 100).caps(available: [a: 0..<400], positions: [:]).isEmpty)
    }

    static func parse(_ block: String) -> (BackpressureConfiguration?, [PipelineError]) {
        let yaml = """
            name: bp
            batch_interval: 1s
            \(block)
            sources:
              lines: {plugin: file-watch, config: {directory: /tmp}}
            sinks:
              out: {from: lines, plugin: console}
            """
        do {
            return (try PipelineParser.parse(text: yaml, file: "bp.yaml").backpressure, [])
        } catch {
            return (nil, error.errors)
        }
    }

    @Test func thePipelineFileSetsSparksKeysWithSparksDefaults() {
        #expect(Self.parse("").0 == nil, "off unless asked for")
        #expect(Self.parse("backpressure: {}").0 == BackpressureConfiguration())
        #expect(Self.parse("backpressure: {enabled: false, initial_rate: 10}").0 == nil)
        let full = Self.parse("backpressure: {initial_rate: 2000, min_rate: 50, pid: {proportional: 0.8, integral: 0.1, derivative: 0.05}}")
        #expect(full.0 == BackpressureConfiguration(initialRate: 2000, minRate: 50, proportional: 0.8, integral: 0.1, derivative: 0.05))

        for (block, keyPath, message) in [
            ("backpressure: {min_rate: 0}", "backpressure.min_rate", "expected a positive number, got '0'"),
            ("backpressure: {pid: {integral: -1}}", "backpressure.pid.integral", "expected a non-negative number, got '-1'"),
            ("backpressure: {intial_rate: 5}", "backpressure.intial_rate", "did you mean 'initial_rate'?"),
            ("backpressure: true", "backpressure", "must be a mapping"),
        ] {
            let errors = Self.parse(block).1
            #expect(errors.count == 1 && errors[0].keyPath == keyPath && errors[0].line == 3 && errors[0].message.contains(message), "\(block): \(errors)")
        }
    }
}
