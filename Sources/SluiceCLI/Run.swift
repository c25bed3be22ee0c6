import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceCore
import SluiceHost
import SluiceLoader
import SluiceSDK
import Prometheus
import SluiceServe

#if canImport(Glibc)
import Glibc
#endif

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline until it is stopped (Ctrl-C or SIGTERM) or a bound is reached.",
        discussion: """
            Progress goes to standard error: one line per batch with its records, scheduling delay, processing \
            time and total delay (a live line on a terminal). Sinks such as console write to standard output. \
            Log messages (the host's, the scheduler's and the plugins') go to standard error too, as text or, with \
            --log-format json, one JSON object per line; JSON also logs each batch and takes --progress auto as none.

            Ctrl-C (SIGINT) or SIGTERM lets the batch in flight finish, closes the sinks and exits 0; a second \
            Ctrl-C exits at once. Exit status: 0 stopped normally; 1 a batch failed, or a plugin could not start \
            (a service it needs is unreachable); 2 the pipeline file is invalid, or a plugin refused its configuration.

            With a checkpoint directory (the pipeline file's 'checkpoint' or --checkpoint-dir), every batch's \
            source positions and operator state are committed after the sinks commit, and a run resumes after \
            the last committed batch, replaying the one that was in flight. --batches N then stops once batch \
            N-1 is committed, counting across restarts.
            """
    )

    @Argument(help: "The pipeline file (YAML).")
    var file: String

    @Option(name: .customLong("batches"), help: "Stop after this many batches.")
    var batches: Int?

    @Flag(name: .customLong("until-idle"), help: "Stop once no source has new input for --idle-batches batches.")
    var untilIdle = false

    @Option(name: .customLong("idle-batches"), help: "Consecutive empty batches that count as idle.")
    var idleBatches = 2

    @Option(help: "Progress display: auto (live line on a terminal, plain lines otherwise), live, plain, none.")
    var progress: ProgressMode = .auto

    @Option(help: "Tasks run at once (default: the number of cores).")
    var parallelism: Int?

    @Option(name: .customLong("shutdown-timeout"), help: "Seconds a graceful stop may take before sluice exits anyway.")
    var shutdownTimeout: Double = 30

    @Option(name: .customLong("log-level"), help: "The least severe log level shown (host, scheduler and plugins).")
    var logLevel: LogLevelOption = .info

    @Option(name: .customLong("log-format"), help: "Log messages as text lines or as one JSON object per line: text, json.")
    var logFormat: LogFormat = .text

    @Option(
        name: .customLong("checkpoint-dir"),
        help: "Keep checkpoints here (overrides the pipeline file's 'checkpoint'): resume where the last run stopped."
    )
    var checkpointDirectory: String?

    @Flag(name: .customLong("no-checkpoint"), help: "Run without checkpoints even if the pipeline file names a directory.")
    var noCheckpoint = false

    @Flag(
        name: .customLong("reset-state"),
        help: "Drop saved operator state that no longer matches its stage's definition (source positions are kept)."
    )
    var resetState = false

    @Option(
        name: .customLong("events-fd"),
        help: ArgumentHelp(
            "Also write every batch event as one JSON object per line to this open file descriptor (for `sluice serve`).",
            visibility: .hidden
        )
    )
    var eventsDescriptor: Int32?

    @Option(
        name: .customLong("http"),
        help: ArgumentHelp("Serve /metrics (Prometheus), /health and /ready at HOST:PORT (port 0 picks a free one).", valueName: "host:port")
    )
    var http: String?

    @OptionGroup var plugins: PluginOptions
    @OptionGroup var values: PipelineValueOptions

    func validate() throws {
        if let batches, batches < 1 { throw ValidationError("--batches must be at least 1") }
        if idleBatches < 1 { throw ValidationError("--idle-batches must be at least 1") }
        if let parallelism, parallelism < 1 { throw ValidationError("--parallelism must be at least 1") }
        if shutdownTimeout <= 0 { throw ValidationError("--shutdown-timeout must be positive") }
        if let http {
            guard let (host, _) = Serve.split(http) else { throw ValidationError("--http must be HOST:PORT, e.g. 127.0.0.1:9090") }
            // Metrics say what a pipeline reads and how fast; they are for the machine's operator unless asked otherwise.
            if !Serve.isLoopback(host) {
                FileHandle.standardError.write(Data("sluice: warning: --http \(http) serves /metrics to other machines, without credentials\n".utf8))
            }
        }
    }

    func run() async throws {
        // A sink writing to a closed pipe gets EPIPE (and reports it) instead of killing the process.
        signal(SIGPIPE, SIG_IGN)
        let resolved = try loadPipeline(file, catalog: plugins.catalog(), values: values)
        // In JSON each batch is a log record; a progress line among the objects would break every reader.
        let reporter = ProgressReporter(mode: logFormat == .json && progress == .auto ? .none : progress)
        // A plugin may quote its configuration in what it says; the log handler hides every secret option's value.
        let secrets = resolved.secrets
        let logs = RunLogs(
            pipeline: resolved, format: logFormat, level: logLevel.level, secrets: secrets, write: { reporter.message($0) }
        )
        let log = logs.pluginLogHandler
        reporter.logDiscards(to: logs.scheduler)
        let logger = logs.host
        var checkpoints: CheckpointStore?
        if !noCheckpoint, let directory = checkpointDirectory ?? resolved.spec.checkpointDirectory {
            do {
                checkpoints = try CheckpointStore(directory: directory)
            } catch {
                logger.error("\(error)")
                throw ExitCode(1)
            }
        }
        var options = SchedulerOptions(pipeline: resolved.spec.name, batchIntervalMilliseconds: resolved.spec.batchIntervalMilliseconds)
        options.maxBatches = batches
        options.untilIdle = untilIdle
        options.backpressure = resolved.spec.backpressure
        options.incrementalSnapshots = resolved.spec.stateSnapshots
        options.idleBatches = idleBatches
        if let parallelism { options.parallelism = parallelism }
        options.resetState = resetState
        let pipeline: PipelineInstance
        do {
            pipeline = try PipelineInstance(resolved, parallelism: options.parallelism, checkpoints: checkpoints, log: log)
        } catch {
            for problem in error.errors { printError(problem.description) }
            throw ExitCode(error.isStartFailure ? 1 : 2)
        }
        let events = eventsDescriptor.map {
            BatchEventWriter(descriptor: $0, pipeline: options.pipeline, batchIntervalMilliseconds: options.batchIntervalMilliseconds)
        }
        // The HTTP server's own messages (hummingbird's "listening") stay below the run's; the line below says it.
        var httpLogger = logs.host
        httpLogger.logLevel = .warning
        let endpoint = http.flatMap(Serve.split).map { address in
            PipelineEndpoint(host: address.host, port: address.port, registry: PrometheusCollectorRegistry(), logger: httpLogger) { host, port in
                let shown = host.contains(":") ? "[\(host)]" : host
                logs.host.notice("serving /metrics, /health and /ready on http://\(shown):\(port)")
            }
        }
        let (summary, stoppedBy) = try await Self.schedule(
            pipeline.graph, options, store: checkpoints, progress: reporter, logs: logs, events: events, endpoint: endpoint,
            shutdownTimeout: shutdownTimeout
        )
        let name = resolved.spec.name
        let why: String
        switch summary.end {
        case .couldNotStart(let message):
            logs.finish("\(name): cannot start: \(message)", progress: reporter)
            pipeline.close()
            logger.error("\(message)")
            throw ExitCode(1)
        case .nothingToDo(let committed):
            logs.finish("\(name): batch \(committed) is already committed; nothing to do", progress: reporter)
            pipeline.close()
            return
        case .batchLimit: why = "batch limit reached"
        case .idle: why = "no new input for \(idleBatches) batches"
        case .stopped: why = stoppedBy
        case .failed(let message): why = message
        }
        let rate = summary.seconds > 0 ? Int(Double(summary.records) / summary.seconds) : 0
        logs.finish(
            "\(name): \(summary.batches) batches, \(summary.records) records in "
                + String(format: "%.2f", summary.seconds) + " s (\(rate) records/s); stopped: \(why)",
            progress: reporter
        )
        pipeline.close()
        if case .failed(let message) = summary.end {
            logger.error("\(message)")
            throw ExitCode(1)
        }
    }

    /// Runs the graph as the one service of a service group until it ends or a signal stops it (`StopOnSignals`).
    /// Returns what the run did and the signal that stopped it; the scheduler is released on return, so that the
    /// pipeline's plugin instances can be destroyed in order.
    private static func schedule(
        _ graph: StreamGraph, _ options: SchedulerOptions, store: CheckpointStore?, progress: ProgressReporter, logs: RunLogs,
        events: BatchEventWriter?, endpoint: PipelineEndpoint?, shutdownTimeout: Double
    ) async throws -> (RunSummary, String) {
        // With --http the metrics go to the endpoint's registry; otherwise to whatever the process bootstrapped.
        let metrics = endpoint.map { MetricsListener(pipeline: options.pipeline, factory: PrometheusMetricsFactory(registry: $0.registry)) }
            ?? MetricsListener(pipeline: options.pipeline)
        let scheduler = PipelineScheduler(
            graph: graph,
            options: options,
            store: store.map { MeteredProgressStore($0, pipeline: options.pipeline) },
            listeners: [progress, metrics] + logs.batchListeners + (events.map { [$0] } ?? []) + (endpoint.map { [$0] } ?? []),
            logger: logs.scheduler,
            phaseObserver: CrashPoint.observer(environment: ProcessInfo.processInfo.environment)
        )
        let service = SchedulerService(scheduler)
        // The group's own messages are not the run's: the progress line and the sinks own the terminal.
        let quiet = Logger(label: "sluice.lifecycle") { _ in SwiftLogNoOpLogHandler() }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)]
                    + (endpoint.map { [.init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup)] } ?? []),
                logger: quiet
            )
        )
        let signals = await StopOnSignals(timeout: shutdownTimeout, logger: logs.host)
        let watcher = Task { await signals.watch(group) }
        try await group.run()
        watcher.cancel()
        // The service records its summary before it returns, and the group returns only after it did.
        guard let summary = service.summary else { throw ExitCode(1) }
        return (summary, signals.stoppedBy)
    }
}
