import Dispatch
import Foundation
import SluiceCore
import SluiceHost
import SluiceLoader
import SluiceSDK

/// The entry point of the typed Swift API, Spark's `StreamingContext`: it makes input streams, and the operations
/// on them build the same operator graph a pipeline file builds. `run` then runs it on the batch clock.
///
/// ```swift
/// let context = StreamingContext(batchInterval: .seconds(1))
/// let lines = try context.source(plugin: "file-watch", config: #"{"directory": "data", "start": "earliest"}"#)
/// let counts = lines.flatMap { $0.split(separator: " ").map(String.init) }.map { Pair($0, Int64(1)) }.reduceByKey(+)
/// counts.print()
/// try context.run(untilIdle: 2)
/// ```
public final class StreamingContext: @unchecked Sendable {  // built and run from one thread
    public let batchInterval: Duration
    public let parallelism: Int
    var graph = StreamGraph()
    private var catalog: PluginCatalog?
    private let pluginDirectories: [String]
    /// Plugin instances, kept alive (and destroyed) with the context.
    private var instances: [PluginInstance] = []
    private var counter = 0

    /// - Parameters:
    ///   - pluginDirectories: searched before `$SLUICE_PLUGIN_PATH` and the directory of the running executable.
    public init(
        batchInterval: Duration,
        parallelism: Int = ProcessInfo.processInfo.activeProcessorCount,
        pluginDirectories: [String] = []
    ) {
        precondition(batchInterval > .zero, "the batch interval must be positive")
        self.batchInterval = batchInterval
        self.parallelism = parallelism
        self.pluginDirectories = pluginDirectories
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
        let made = try PluginInstance(plugin: plugin, name: name, configJSON: config) { instance, level, message in
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
    /// `untilIdle` consecutive batches had no input, whichever comes first (at least one of them must be given).
    @discardableResult
    public func run(batches: Int? = nil, untilIdle: Int? = nil) throws -> RunSummary {
        precondition(batches != nil || untilIdle != nil, "give run a number of batches, an idle limit, or both")
        let executor = BatchExecutor(graph: graph, parallelism: parallelism)
        var positions: [PartitionKey: UInt64] = [:]
        var summary = RunSummary(batches: 0, records: 0, discarded: 0)
        var idle = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let wallStart = Int64(Date().timeIntervalSince1970 * 1000)
        let interval = UInt64(intervalMilliseconds) * 1_000_000
        for n in 0... {
            if let batches, n >= batches { break }
            let due = start + UInt64(n) * interval
            let now = DispatchTime.now().uptimeNanoseconds
            if due > now { usleep(useconds_t((due - now) / 1000)) }
            let plan = try executor.plan(positions: positions)
            let outcome = try executor.run(plan, info: BatchInfo(id: UInt64(n), timeMilliseconds: wallStart + Int64(n) * Int64(intervalMilliseconds)))
            try executor.commitSources(plan)
            positions.merge(plan.endPositions) { $1 }
            summary.batches += 1
            summary.records += outcome.inputRecords
            summary.discarded += outcome.discarded
            idle = outcome.inputRecords == 0 ? idle + 1 : 0
            if let untilIdle, idle >= untilIdle { break }
        }
        return summary
    }
}

/// A problem building or running a streaming program.
public struct StreamingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
