import Foundation
import SluiceCore
import SluiceFunctions
import SluiceLoader
import SluiceSDK

extension PluginInstance: BatchSource, BatchTransform, BatchSink {}

/// A sink plugin's retries go to the log with the sink's name, as its own messages do.
extension PluginInstance: SinkRetryListener {
    public func willRetry(_ info: BatchInfo, attempt: Int, of attempts: Int, afterMilliseconds: Int, because error: any Error) {
        log(
            SLUICE_LOG_WARNING,
            "batch \(info.id) asked for a retry (\(error)); replaying it from begin in \(afterMilliseconds) ms, "
                + "attempt \(attempt) of \(attempts)"
        )
    }
}
extension PluginCallError: RetryableError {}

/// A resolved pipeline with live plugin instances wired into an operator graph.
public final class PipelineInstance: @unchecked Sendable {  // changed only by `close`, after the run
    public let resolved: ResolvedPipeline
    public private(set) var graph: StreamGraph
    /// Every instance in the order made: sources, then stages, then sinks.
    private var instances: [PluginInstance]

    /// Creates every plugin instance (sources, then stages, then sinks). A plugin that refuses its configuration
    /// is reported at the location of its `config` block.
    /// - Parameter checkpoints: when given, each source gets its own directory in it (ABI 1.1 `state_directory`)
    ///   for what it keeps to replay exactly.
    public init(
        _ resolved: ResolvedPipeline,
        parallelism: Int,
        checkpoints: (any ProgressStore)? = nil,
        log: @escaping PluginLogHandler
    ) throws(PipelineErrors) {
        self.resolved = resolved
        var graph = StreamGraph()
        var instances: [PluginInstance] = []
        let spec = resolved.spec

        func make(_ component: ResolvedPipeline.Component, stateDirectory: String? = nil) throws(PipelineErrors) -> PluginInstance {
            do {
                let instance = try PluginInstance(
                    plugin: component.plugin,
                    name: component.name,
                    configJSON: component.configJSON,
                    stateDirectory: stateDirectory,
                    log: log
                )
                instances.append(instance)
                return instance
            } catch {
                let failure = resolved.createFailure(component, error)
                throw PipelineErrors(errors: [failure.error], isStartFailure: failure.isStartFailure)
            }
        }

        for (source, component) in zip(spec.sources, resolved.sources) {
            var directory: String?
            if let checkpoints {
                do {
                    directory = try checkpoints.sourceDirectory(source.name)
                } catch {
                    throw PipelineErrors(errors: [
                        PipelineError(file: spec.file, line: source.location.line, column: source.location.column,
                                      keyPath: source.location.keyPath, message: "cannot create the source's checkpoint directory: \(error)")
                    ])
                }
            }
            let instance = try make(component, stateDirectory: directory)
            graph.add(source.name, .source(instance, maxRecordsPerPartition: source.maxRecordsPerPartition))
        }
        for (stage, component) in resolved.stages {
            let inputs = stage.from.compactMap { graph.index(of: $0.name) }
            switch stage.kind {
            case .plugin:
                guard let component else { continue }
                graph.add(stage.name, .transform(try make(component), input: inputs[0]))
            case .operation(let operation, var arguments):
                arguments.reducer = resolved.reducers[stage.name]
                if let component = resolved.reducerPlugins[stage.name] {
                    arguments.reducer = PluginReducer(try make(component))
                }
                if let component = resolved.stateUpdaterPlugins[stage.name] {
                    arguments.stateFunction = PluginStateFunction(try make(component))
                }
                if case .perValue = operation.function {
                    guard let function = resolved.functions[stage.name] else { continue }
                    arguments.perValue = function
                }
                graph.add(stage.name, operation.node(arguments, inputs: inputs, parallelism: parallelism))
            }
        }
        for (sink, component) in zip(spec.sinks, resolved.sinks) {
            guard let input = graph.index(of: sink.from) else { continue }
            graph.addSink(StreamGraph.Sink(name: sink.name, sink: try make(component), input: input))
        }
        self.graph = graph
        self.instances = instances
    }

    /// Destroys the instances one by one in the order they were made: sources first (stop reading), then stages,
    /// sinks last (after everything was written). An instance is destroyed when its last reference goes, so whoever
    /// ran the graph (a scheduler) must be released before this is called.
    public func close() {
        graph = StreamGraph()
        while !instances.isEmpty { instances.removeFirst() }
    }
}

/// A reducer plugin (ABI 1.1) as a keyed operation's reducer.
final class PluginReducer: CustomReducer {
    let instance: PluginInstance
    let valueType: ReducerValueType
    var name: String { instance.plugin.name }
    var hasInverse: Bool { instance.hasReduceInvert }

    init(_ instance: PluginInstance) {
        self.instance = instance
        valueType = instance.reduceValueType == SLUICE_REDUCE_DOUBLE ? .double : .int64
    }

    func combine(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws {
        try instance.reduceCombine(a, b, out, n)
    }

    func invert(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws {
        try instance.reduceInvert(a, b, out, n)
    }
}
