import Dispatch
import Foundation
import Logging
import SluiceCore
import SluiceHost
import SluiceLoader
import SluiceSDK
import Synchronization

/// The entry point of the typed Swift API, Spark's `StreamingContext`: it makes input streams, and the operations
/// on them build the same operator graph a pipeline file builds. `run` then runs it on the batch clock with the same
/// scheduler as `sluice run`; with a checkpoint directory every batch commits its source positions and operator
/// state, and a program started again resumes after the last committed batch, replaying the one in flight (exactly
/// once with sinks idempotent per batch, such as the `files` plugin). Build the same graph in the same order on every
/// start: stages are named by their position in it.
///
/// ```swift
/// let context = StreamingContext(batchInterval: .seconds(1))
/// let lines = try context.source(plugin: "file-watch", config: #"{"directory": "data", "start": "earliest"}"#)
/// let counts = lines.flatMap { $0.split(separator: " ").map(String.init) }.map { Pair($0, Int64(1)) }.reduceByKey(+)
/// counts.print()
/// try context.run(untilIdle: 2)
/// ```
public final class StreamingContext: @unchecked Sendable {  // built and run from one thread; `stop` from any
    public let batchInterval: Duration
    public let parallelism: Int
    /// Where progress is kept (nil: no checkpoints).
    public let checkpointDirectory: String?
    /// Spark's backpressure (`spark.streaming.backpressure.enabled`): set before `run` to let a PID estimator limit
    /// the records per second each batch takes.
    public var backpressure: BackpressureConfiguration?
    private var store: CheckpointStore?
    private let running = Mutex<PipelineScheduler?>(nil)
    private let stopped = Mutex(false)
    var graph = StreamGraph()
    private var catalog: PluginCatalog?
    private let pluginDirectories: [String]
    /// Plugin instances, kept alive (and destroyed) with the context.
    private var instances: [PluginInstance] = []
    private var counter = 0
    /// Where the scheduler says what a start found (a replay, a damaged checkpoint) and the retries it makes. By
    /// default text lines on standard error; a program with its own logging system passes one of its loggers.
    public var logger = Logger(label: "scheduler") { label in
        SluiceLogHandler(label: label, format: .text, level: .info) { FileHandle.standardError.write(Data($0.utf8)) }
    }

    /// - Parameters:
    ///   - pluginDirectories: searched before `$SLUICE_PLUGIN_PATH` and the directory of the running executable.
    ///   - checkpointDirectory: keep progress there (the same layout `sluice checkpoints` reads); one process at a time.
    public init(
        batchInterval: Duration,
        parallelism: Int = ProcessInfo.processInfo.activeProcessorCount,
        pluginDirectories: [String] = [],
        checkpointDirectory: String? = nil
    ) {
        precondition(batchInterval > .zero, "the batch interval must be positive")
        self.batchInterval = batchInterval
        self.parallelism = parallelism
        self.pluginDirectories = pluginDirectories
        self.checkpointDirectory = checkpointDirectory
    }

    /// The checkpoint store, opened (and locked) on first use.
    private func progressStore() throws -> CheckpointStore? {
        guard let checkpointDirectory else { return nil }
        if store == nil { store = try CheckpointStore(directory: checkpointDirectory) }
        return store
    }

    var intervalMilliseconds: Int {
        let (seconds, attoseconds) = batchInterval.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// A duration as a number of batches; it must be a whole multiple of the batch interval.
    func batches(_ duration: Duration, _ what: String) -> Int {
        let interval = batchInterval
        let count = duration / interval
        precondition(count >= 1 && interval * Int(count.rounded()) == duration,
                     "\(what) \(duration) is not a multiple of the batch interval \(interval)")
        return Int(count.rounded())
    }

    func add(_ prefix: String, _ node: StreamGraph.Node) -> Int {
        counter += 1
        return graph.add("\(prefix)-\(counter)", node)
    }

    func addSink(_ prefix: String, _ sink: any BatchSink, input: Int) {
        counter += 1
        graph.addSink(.init(name: "\(prefix)-\(counter)", sink: sink, input: input))
    }

    // MARK: Inputs

    /// An input stream from any `BatchSource` (a plugin instance, or a source written in Swift).
    public func source(_ source: any BatchSource, maxRecordsPerPartition: Int = 250_000) -> DStream<String> {
        DStream(context: self, node: add("source", .source(source, maxRecordsPerPartition: maxRecordsPerPartition)))
    }

    /// An input stream from a source plugin, configured with JSON.
    public func source(plugin name: String, config: String = "{}", maxRecordsPerPartition: Int = 250_000) throws
        -> DStream<String>
    {
        source(try instance(name, kind: .source, config: config), maxRecordsPerPartition: maxRecordsPerPartition)
    }

    /// An instance of a loaded plugin of `kind`.
    func instance(_ name: String, kind: PluginKind, config: String) throws -> PluginInstance {
        if catalog == nil { catalog = PluginCatalog.scan(directories: PluginCatalog.searchPath(explicit: pluginDirectories)) }
        guard let plugin = catalog?.plugins[name], plugin.kind == kind else {
            let known = (catalog?.plugins.values.filter { $0.kind == kind }.map(\.name) ?? []).sorted()
            throw StreamingError("no \(kind.rawValue) plugin named '\(name)'" + didYouMean(name, among: known)
                + "; found: " + known.joined(separator: ", "))
        }
        // A source keeps what it needs to replay exactly (write-ahead log, file index) in the checkpoint directory,
        // under the name its node will have.
        let directory = kind == .source ? try progressStore()?.sourceDirectory("source-\(counter + 1)") : nil
        let made = try PluginInstance(plugin: plugin, name: name, configJSON: config, stateDirectory: directory) { instance, level, message in
            if level >= SLUICE_LOG_WARNING { FileHandle.standardError.write(Data("\(instance): \(message)\n".utf8)) }
        }
        instances.append(made)
        return made
    }

    // MARK: Running

    /// What a run did.
    public struct RunSummary: Sendable {
        public var batches: Int
        public var records: Int
        /// Records dropped because an operation could not use them.
        public var discarded: Int
    }

    /// Runs batches on the clock — batch *n* is due at start + *n* × interval — until `batches` have run, or
    /// `untilIdle` consecutive batches had no input, or `stop()` is called. At least one of `batches` and `untilIdle`
    /// must be given. With a checkpoint directory `batches` counts across restarts: the run stops once batch
    /// `batches - 1` is committed. Throws when a batch fails (nothing of it is committed) or the checkpoint cannot be
    /// used.
    @discardableResult
    public func run(batches: Int? = nil, untilIdle: Int? = nil) throws -> RunSummary {
        precondition(batches != nil || untilIdle != nil, "give run a number of batches, an idle limit, or both")
        var options = SchedulerOptions(pipeline: "swift-api", batchIntervalMilliseconds: intervalMilliseconds)
        options.maxBatches = batches
        options.untilIdle = untilIdle != nil
        options.backpressure = backpressure
        options.idleBatches = untilIdle ?? 1
        options.parallelism = parallelism
        let scheduler = PipelineScheduler(
            graph: graph,
            options: options,
            store: try progressStore(),
            logger: logger
        )
        running.withLock { $0 = scheduler }
        defer { running.withLock { $0 = nil } }
        if stopped.withLock({ $0 }) { scheduler.requestStop() }
        let summary = scheduler.runBatches()
        switch summary.end {
        case .failed(let message), .couldNotStart(let message): throw StreamingError(message)
        case .batchLimit, .idle, .stopped, .nothingToDo: break
        }
        return RunSummary(batches: summary.batches, records: summary.records, discarded: summary.discarded)
    }

    /// Stops a `run` after the batch in flight (which finishes and commits); from any thread, for example a signal
    /// handler the program installs.
    public func stop() {
        stopped.withLock { $0 = true }
        running.withLock { $0?.requestStop() }
    }
}

/// A problem building or running a streaming program.
public struct StreamingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
