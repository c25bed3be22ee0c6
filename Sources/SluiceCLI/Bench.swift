import ArgumentParser
import Foundation
import SluiceCore
import SluiceFunctions
import SluiceHost
import SluiceLoader
import SluiceSDK

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Micro-benchmarks of the host (see docs/benchmarks.md).",
        subcommands: [Boundary.self, Window.self, State.self, StateCheckpoints.self, Functions.self]
    )
}

extension Bench {
    /// The cost of the plugin boundary: the same no-op stage built into the host, and loaded from a `.so`.
    struct Boundary: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "boundary",
            abstract: "Compare a no-op transform built into the host with the `noop` plugin loaded from its .so.",
            discussion: """
                Runs batches of text records through (a) a copy stage compiled into the host, (b) the noop plugin \
                in `copy` mode (the same loop behind the C ABI), and (c) the noop plugin in `passthrough` mode (the \
                call alone). Rounds alternate between them so that machine noise hits all alike; medians are \
                reported in nanoseconds per record. Build with -c release for meaningful numbers.
                """
        )

        @Option(help: "Records in total per measurement.") var records = 4_000_000
        @Option(name: .customLong("batch-size"), help: "Records per batch.") var batchSize = 4096
        @Option(help: "Alternating rounds.") var rounds = 7
        @OptionGroup var plugins: PluginOptions

        func run() throws {
            let catalog = plugins.catalog()
            guard let noop = catalog.plugins["noop"] else {
                printError("sluice: the noop plugin was not found; build it (swift build) or pass --plugin-dir")
                throw ExitCode(1)
            }
            let batches = max(1, records / batchSize)
            let inputs = (0..<batches).map { b -> OwnedBatch in
                var builder = BatchBuilder(expectedCount: batchSize, expectedBytes: batchSize * 40)
                for i in 0..<batchSize { builder.append("record \(b) \(i) of a benchmark batch, some text") }
                return OwnedBatch(builder)
            }
            let log: PluginLogHandler = { _, _, _ in }
            let copy = try PluginInstance(plugin: noop, name: "copy", configJSON: #"{"mode":"copy"}"#, log: log)
            let pass = try PluginInstance(plugin: noop, name: "pass", configJSON: #"{"mode":"passthrough"}"#, log: log)
            let stages: [(String, any BatchTransform)] = [
                ("built-in copy stage", HostCopyTransform()),
                ("noop.so, mode copy", copy),
                ("noop.so, mode passthrough", pass),
            ]
            var samples = [[Double]](repeating: [], count: stages.count)
            for _ in 0..<rounds {
                for (index, stage) in stages.enumerated() {
                    let start = DispatchTime.now().uptimeNanoseconds
                    for input in inputs { _ = try stage.1.transform(input) }
                    let elapsed = DispatchTime.now().uptimeNanoseconds - start
                    samples[index].append(Double(elapsed) / Double(batches * batchSize))
                }
            }
            let medians = samples.map { $0.sorted()[$0.count / 2] }
            print("plugin boundary: \(batches) batches x \(batchSize) records, \(rounds) alternating rounds, median ns/record")
            for (index, stage) in stages.enumerated() {
                let ratio = medians[index] / medians[0]
                print(
                    stage.0.padding(toLength: 28, withPad: " ", startingAt: 0)
                        + String(format: "%8.2f ns/record   %5.3fx built-in", medians[index], ratio)
                )
            }
        }
    }
}

/// The noop plugin's copy loop, compiled into the host: the baseline for the boundary's cost.
final class HostCopyTransform: BatchTransform {
    func transform(_ input: OwnedBatch) throws -> OwnedBatch {
        let view = input.view
        var output = BatchBuilder(
            valueType: .bytes,
            timestamps: view.hasTimestamps,
            expectedCount: view.count,
            expectedBytes: Int(view.raw.value_data_len)
        )
        for i in 0..<view.count {
            output.append(view.value(at: i))
            if let t = view.timestamp(at: i) { output.setLastTimestamp(t) }
        }
        return OwnedBatch(output)
    }
}

// MARK: - Stateful operators

/// A source of synthetic keyed records for the operator benchmarks: `perBatch` records per batch, keys drawn with a
/// multiplicative stride from `keys` distinct keys, small integer values.
final class SyntheticPairs: BatchSource, @unchecked Sendable {  // `released` is set between batches only
    let perBatch: Int
    let keys: Int
    var released = 0
    private let keyNames: [[UInt8]]

    init(perBatch: Int, keys: Int) {
        self.perBatch = perBatch
        self.keys = keys
        keyNames = (0..<keys).map { Array("key-\($0)".utf8) }
    }

    func partitionCount() throws -> Int { 1 }
    func available(partition: Int) throws -> Range<UInt64> { 0..<UInt64(released * perBatch) }
    func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
        var builder = BatchBuilder(valueType: .int64, keyed: true, expectedCount: offsets.count)
        for offset in offsets {
            // A multiplicative stride visits every key and mixes batches.
            let key = Int((offset &* 2_654_435_761) % UInt64(keys))
            keyNames[key].withUnsafeBytes { builder.append(key: $0, value: Int64(offset % 7) - 3) }
        }
        return OwnedBatch(builder)
    }
    func commit(partition: Int, upTo offset: UInt64) throws {}
}

/// Runs `batches` batches of `op` over synthetic pairs; returns the processing time of each batch in milliseconds,
/// the resident memory after the last batch (with the operator's state still alive), and the stage.
func runSynthetic(_ op: KeyedOperator, perBatch: Int, keys: Int, batches: Int, partitions: Int) throws
    -> (milliseconds: [Double], residentAtEnd: Int, stage: KeyedStage)
{
    let source = SyntheticPairs(perBatch: perBatch, keys: keys)
    var graph = StreamGraph()
    let input = graph.add("pairs", .source(source, maxRecordsPerPartition: perBatch))
    let keyed = KeyedStage(op, partitions: partitions)
    let stage = graph.add("op", .keyed(keyed, inputs: [input]))
    graph.addSink(.init(name: "discard", sink: DiscardSink(), input: stage))
    let executor = BatchExecutor(graph: graph, parallelism: ProcessInfo.processInfo.activeProcessorCount)
    var positions: [PartitionKey: UInt64] = [:]
    var times: [Double] = []
    for n in 0..<batches {
        source.released = n + 1
        let start = DispatchTime.now().uptimeNanoseconds
        let plan = try executor.plan(positions: positions)
        _ = try executor.run(plan, info: BatchInfo(id: UInt64(n), timeMilliseconds: Int64(n) * 1000))
        positions = plan.endPositions
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    return (times, residentBytes(), keyed)
}

/// Counts what it is given and keeps nothing.
final class DiscardSink: BatchSink, @unchecked Sendable {  // written from the scheduling thread only
    var records = 0
    func begin(_ info: BatchInfo) throws {}
    func write(_ chunk: OwnedBatch) throws { records += chunk.count }
    func commit(_ info: BatchInfo) throws {}
}

func median(_ values: some Collection<Double>) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

extension Bench {
    /// reduceByKeyAndWindow: per-batch time for a short and a long window, with and without the inverse function.
    struct Window: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "window",
            abstract: "Per-batch time of reduceByKeyAndWindow for windows of 2 and 60 batches, with and without inverse.",
            discussion: """
                Feeds synthetic keyed records through reduceByKeyAndWindow (sum, slide 1) and reports the median \
                processing time per batch once the window is full. With the inverse function the cost should not \
                grow with the window; without it, it grows with the window length (the window is recomputed).
                """
        )

        @Option(name: .customLong("records"), help: "Records per batch.") var perBatch = 100_000
        @Option(help: "Distinct keys.") var keys = 20_000
        @Option(help: "Batches measured after the window is full.") var batches = 40

        func run() throws {
            print("reduceByKeyAndWindow(sum), slide 1 batch: \(perBatch) records/batch over \(keys) keys, median of \(batches) batches")
            var results: [String: Double] = [:]
            for inverse in [true, false] {
                for window in [2, 60] {
                    let op = KeyedOperator(.reduceByKeyAndWindow, function: .sum, window: window, slide: 1, inverse: inverse)
                    let times = try runSynthetic(op, perBatch: perBatch, keys: keys, batches: window + batches, partitions: 2)
                        .milliseconds
                    let steady = median(times.dropFirst(window))
                    results["\(inverse)-\(window)"] = steady
                    print(
                        "  \(inverse ? "inverse   " : "recompute ") window \(String(window).padding(toLength: 3, withPad: " ", startingAt: 0))"
                            + String(format: "%9.2f ms/batch", steady)
                    )
                }
            }
            print(String(format: "window 60 / window 2: %.2fx with inverse, %.2fx recomputing",
                         results["true-60"]! / results["true-2"]!, results["false-60"]! / results["false-2"]!))
        }
    }

    /// updateStateByKey over many keys: memory per key and per-batch time.
    struct State: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "state",
            abstract: "Memory per key and per-batch time of updateStateByKey with 1 M keys.",
            discussion: """
                Fills the state with --keys distinct keys, then runs more batches that update a part of them. \
                Memory per key is the state's allocated bytes over its keys (and, for comparison, the growth of \
                the process's resident memory); per-batch time is the median over the update batches (the whole \
                state is emitted every batch, as in Spark).
                """
        )

        @Option(help: "Distinct keys in the state.") var keys = 1_000_000
        @Option(name: .customLong("records"), help: "Records per batch.") var perBatch = 250_000
        @Option(help: "Batches after the state is full.") var batches = 10

        func run() throws {
            let fill = (keys + perBatch - 1) / perBatch
            let before = residentBytes()
            let op = KeyedOperator(.updateStateByKey, function: .sum)
            let (times, after, stage) = try runSynthetic(op, perBatch: perBatch, keys: keys, batches: fill + batches, partitions: 2)
            print("updateStateByKey(sum): \(keys) keys, \(perBatch) records/batch, \(fill) batches to fill, then \(batches)")
            print(String(format: "  state: %d keys in %.1f MiB allocated = %.0f bytes per key (keys are 9-10 bytes)",
                         stage.stateKeys, Double(stage.stateBytes) / 1_048_576, Double(stage.stateBytes) / Double(stage.stateKeys)))
            print(String(format: "  resident memory growth of the process: %.1f MiB = %.0f bytes per key (state, one batch in flight, malloc slack)",
                         Double(after - before) / 1_048_576, Double(after - before) / Double(keys)))
            print(String(format: "  per-batch time with the state full: median %.1f ms (%.0f ns per key held)",
                         median(times.dropFirst(fill)), median(times.dropFirst(fill)) * 1e6 / Double(keys)))
        }
    }
}

extension Bench {
    /// Incremental state snapshots against whole ones: bytes and time per checkpoint with a large, slowly changing state.
    struct StateCheckpoints: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "state-checkpoints",
            abstract: "Bytes and time per checkpoint of updateStateByKey with 1 M keys, 1 % touched per batch: deltas against whole snapshots.",
            discussion: """
                Two checkpointed pipelines (updateStateByKey sum over --keys keys, 2 partitions, a real checkpoint \
                directory each) are filled with every key in one batch, then run batches of --touched records (each \
                a distinct key) on the scheduler: one saving deltas with the default compaction, one saving the \
                whole state at every commit (as before deltas). Rounds of --batches-per-round batches alternate \
                between them, each a new run that restores its checkpoint. Reported per batch: the state bytes the \
                commit wrote (mean, so that compactions count), the commit's time and the batch's processing time \
                (medians), and their ratios to the whole snapshots'; and per run the time outside its batches \
                (restoring the checkpoint, most of it).
                """
        )

        @Option(help: "Distinct keys in the state.") var keys = 1_000_000
        @Option(help: "Records per batch after the fill, each a distinct key.") var touched = 10_000
        @Option(help: "Alternating rounds.") var rounds = 4
        @Option(name: .customLong("batches-per-round"), help: "Batches per round.") var perRound = 15
        @Option(help: "Where the checkpoint directories go (a new temporary directory by default; removed after).")
        var directory: String?

        struct Figures {
            var bytes: [Int] = []
            var commitMilliseconds: [Double] = []
            var batchMilliseconds: [Double] = []
            var deltas = 0
            /// Each run's time outside its batches: mostly restoring the checkpoint (a chain, or a whole snapshot).
            var startMilliseconds: [Double] = []
        }

        func run() throws {
            let root = directory ?? NSTemporaryDirectory() + "sluice-bench-checkpoints-\(getpid())"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            defer { if directory == nil { try? FileManager.default.removeItem(atPath: root) } }
            let modes: [(name: String, policy: IncrementalSnapshots?)] = [("whole", nil), ("incremental", IncrementalSnapshots())]
            var figures = [Figures](repeating: Figures(), count: modes.count)
            for mode in modes {
                try FileManager.default.createDirectory(atPath: root + "/" + mode.name, withIntermediateDirectories: true)
                _ = try runCheckpointed(mode.policy, directory: root + "/" + mode.name, offered: keys, cap: keys, batches: 1)
            }
            for round in 0..<rounds {
                let batches = 1 + (round + 1) * perRound
                for (index, mode) in modes.enumerated() {
                    let measured = try runCheckpointed(
                        mode.policy, directory: root + "/" + mode.name, offered: keys + (batches - 1) * touched, cap: touched, batches: batches
                    )
                    figures[index].bytes += measured.bytes
                    figures[index].commitMilliseconds += measured.commitMilliseconds
                    figures[index].batchMilliseconds += measured.batchMilliseconds
                    figures[index].deltas += measured.deltas
                    figures[index].startMilliseconds += measured.startMilliseconds
                }
            }
            print("updateStateByKey(sum): \(keys) keys, \(touched) touched per batch (\(String(format: "%.1f", 100 * Double(touched) / Double(keys))) %), "
                  + "\(rounds) alternating rounds of \(perRound) batches per mode")
            let whole = figures[0]
            for (index, mode) in modes.enumerated() {
                let f = figures[index]
                let bytes = Double(f.bytes.reduce(0, +)) / Double(max(1, f.bytes.count))
                print(
                    mode.name.padding(toLength: 12, withPad: " ", startingAt: 0)
                        + String(format: "%12.0f bytes/batch (%.4fx)  commit %8.2f ms (%.3fx)  batch %8.2f ms (%.3fx)  %d of %d commits deltas",
                                 bytes, bytes / (Double(whole.bytes.reduce(0, +)) / Double(max(1, whole.bytes.count))),
                                 median(f.commitMilliseconds), median(f.commitMilliseconds) / median(whole.commitMilliseconds),
                                 median(f.batchMilliseconds), median(f.batchMilliseconds) / median(whole.batchMilliseconds),
                                 f.deltas, f.bytes.count)
                )
            }
            print(String(format: "start of a run (restoring its checkpoint): whole %.0f ms, incremental %.0f ms (%.3fx), medians of %d runs",
                         median(whole.startMilliseconds), median(figures[1].startMilliseconds),
                         median(figures[1].startMilliseconds) / median(whole.startMilliseconds), rounds))
            let incremental = figures[1]
            let deltaBytes = incremental.bytes.sorted()
            print("incremental: median \(deltaBytes[deltaBytes.count / 2]) bytes per commit, largest \(deltaBytes.last ?? 0); "
                  + "\(incremental.bytes.count - incremental.deltas) whole snapshots (compactions) among its \(incremental.bytes.count) commits")
        }

        /// One run of the pipeline over `directory` until batch `batches - 1` is committed, the source offering
        /// `offered` records and a batch taking at most `cap`; the figures of each batch it ran.
        func runCheckpointed(_ policy: IncrementalSnapshots?, directory: String, offered: Int, cap: Int, batches: Int) throws -> Figures {
            let source = SyntheticPairs(perBatch: offered, keys: keys)
            source.released = 1
            var graph = StreamGraph()
            let input = graph.add("pairs", .source(source, maxRecordsPerPartition: cap))
            let totals = graph.add("totals", .keyed(KeyedStage(KeyedOperator(.updateStateByKey, function: .sum), partitions: 2), inputs: [input]))
            graph.addSink(.init(name: "discard", sink: DiscardSink(), input: totals))
            let store = MeasuringStore(try CheckpointStore(directory: directory))
            let listener = BatchTimes()
            var options = SchedulerOptions(pipeline: "bench", batchIntervalMilliseconds: 1)
            options.maxBatches = batches
            options.incrementalSnapshots = policy
            let summary = PipelineScheduler(graph: graph, options: options, store: store, listeners: [listener]).runBatches()
            guard summary.end == .batchLimit else { throw ValidationError("the benchmark's run ended with \(summary.end)") }
            return Figures(
                bytes: store.bytes, commitMilliseconds: store.milliseconds, batchMilliseconds: listener.milliseconds, deltas: store.deltas,
                startMilliseconds: [summary.seconds * 1000 - listener.milliseconds.reduce(0, +)]
            )
        }
    }
}

/// A checkpoint store that measures the state bytes and the time of each commit it passes on.
final class MeasuringStore: ProgressStore, @unchecked Sendable {  // used from the scheduling thread only
    let store: CheckpointStore
    var bytes: [Int] = []
    var milliseconds: [Double] = []
    var deltas = 0

    init(_ store: CheckpointStore) { self.store = store }

    var location: String { store.location }
    var keepsDeltas: Bool { store.keepsDeltas }
    func loadLatest() throws -> LoadedCommit? { try store.loadLatest() }
    func inflightStatus() -> InflightStatus { store.inflightStatus() }
    func highestCommitBatch() -> UInt64? { store.highestCommitBatch() }
    func writeInflight(_ record: InflightRecord) throws { try store.writeInflight(record) }
    func recordClock(_ clock: BatchClock) throws { try store.recordClock(clock) }
    func sourceDirectory(_ name: String) throws -> String? { try store.sourceDirectory(name) }
    func acquireLease(owner: String) throws -> ProgressLease { try store.acquireLease(owner: owner) }

    func commit(_ record: CommitRecord, snapshots: [StageSnapshot], lease: ProgressLease) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        try store.commit(record, snapshots: snapshots, lease: lease)
        milliseconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        bytes.append(snapshots.reduce(0) { $0 + $1.bytes.count })
        deltas += snapshots.contains { $0.base != nil } ? 1 : 0
    }
}

/// The processing time of each completed batch (from its start to its commit), in milliseconds.
final class BatchTimes: BatchListener, @unchecked Sendable {  // called from the scheduling thread only
    var milliseconds: [Double] = []
    func batchCompleted(_ event: BatchCompleted) { milliseconds.append(event.processingMilliseconds) }
}

/// This process's resident set size in bytes (from /proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

extension Bench {
    /// libffi: a library function per value and per batch, against the same arithmetic compiled into the host.
    struct Functions: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "functions",
            abstract: "Cost per value of a function-library map called through libffi, scalar and batch-shaped.",
            discussion: """
                Needs a manifest declaring `scale: double(double)` and `scale_batch: void(const double*, double*, \
                int64)` (x * 1.8 + 32); Benchmarks/functions/run.sh builds one and runs this. Maps batches of \
                values through (a) the arithmetic in Swift, (b) the scalar function (one ffi_call per value), (c) \
                the batch function (one ffi_call per batch). Rounds alternate; medians in ns per value.
                """
        )

        @Option(help: "The function library manifest.") var manifest: String
        @Option(help: "Values per measurement.") var values = 4_000_000
        @Option(name: .customLong("batch-size"), help: "Values per batch.") var batchSize = 4096
        @Option(help: "Alternating rounds.") var rounds = 7

        func run() throws {
            let library: FunctionLibrary
            do {
                library = try FunctionLibrary(manifest: manifest)
            } catch {
                printError("sluice: \(error)")
                throw ExitCode(1)
            }
            guard let scalar = library.functions["scale"], let batch = library.functions["scale_batch"] else {
                printError("sluice: \(manifest) must declare 'scale' and 'scale_batch'")
                throw ExitCode(1)
            }
            let input = (0..<batchSize).map { Double($0).bitPattern }
            var output = [UInt64](repeating: 0, count: batchSize)
            let batches = max(1, values / batchSize)
            let stages: [(String, (UnsafePointer<UInt64>, UnsafeMutablePointer<UInt64>) -> Void)] = [
                ("Swift, compiled in", { i, o in
                    for k in 0..<batchSize { o[k] = (Double(bitPattern: i[k]) * 1.8 + 32.0).bitPattern }
                }),
                ("libffi, one call per value", { i, o in scalar.map(i, o, batchSize) }),
                ("libffi, one call per batch", { i, o in batch.map(i, o, batchSize) }),
            ]
            var samples = [[Double]](repeating: [], count: stages.count)
            for _ in 0..<rounds {
                for (index, stage) in stages.enumerated() {
                    let start = DispatchTime.now().uptimeNanoseconds
                    input.withUnsafeBufferPointer { i in
                        output.withUnsafeMutableBufferPointer { o in
                            for _ in 0..<batches { stage.1(i.baseAddress!, o.baseAddress!) }
                        }
                    }
                    samples[index].append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(batches * batchSize))
                }
            }
            precondition(Double(bitPattern: output[10]) == 50.0, "the functions computed the wrong value")
            let medians = samples.map { median($0) }
            print("function library map: \(batches) batches x \(batchSize) values, \(rounds) alternating rounds, median ns/value")
            for (index, stage) in stages.enumerated() {
                print(stage.0.padding(toLength: 30, withPad: " ", startingAt: 0)
                    + String(format: "%8.2f ns/value   %6.2fx Swift", medians[index], medians[index] / medians[0]))
            }
        }
    }
}
