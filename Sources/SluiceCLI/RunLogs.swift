import Logging
import SluiceHost
import SluiceLoader

/// The loggers of one `sluice run`: bootstraps the logging system (once, here in the command line — libraries only
/// take loggers) with `SluiceLogHandler` in the chosen format, and gives the host, the scheduler and the plugin
/// instances their loggers, each with the pipeline's name as metadata.
struct RunLogs: Sendable {
    let host: Logger
    let scheduler: Logger
    let plugin: Logger
    let format: LogFormat
    /// The plugin each instance of the pipeline was made from, by instance name.
    let plugins: [String: String]

    init(
        pipeline: ResolvedPipeline, format: LogFormat, level: Logger.Level, secrets: [String],
        write: @escaping @Sendable (String) -> Void
    ) {
        LoggingSystem.bootstrap { label in
            SluiceLogHandler(label: label, format: format, level: level, secrets: secrets, write: write)
        }
        func logger(_ label: String) -> Logger {
            var logger = Logger(label: label)
            logger[metadataKey: "pipeline"] = .string(pipeline.spec.name)
            return logger
        }
        host = logger("host")
        scheduler = logger("scheduler")
        plugin = logger("plugin")
        self.format = format
        let components = pipeline.sources + pipeline.stages.compactMap(\.component) + pipeline.sinks
            + pipeline.reducerPlugins.values
        plugins = Dictionary(components.map { ($0.name, $0.plugin.name) }, uniquingKeysWith: { first, _ in first })
    }

    /// Turns what a plugin instance says through the host API's log callback into a record of the `plugin` logger
    /// with the instance and its plugin as metadata.
    var pluginLogHandler: PluginLogHandler {
        let logger = plugin
        let plugins = plugins
        return { instance, level, message in
            var metadata: Logger.Metadata = ["instance": .string(instance)]
            if let name = plugins[instance] { metadata["plugin"] = .string(name) }
            logger.log(level: Self.level(abi: level), "\(message)", metadata: metadata)
        }
    }

    /// `SLUICE_LOG_TRACE` … `SLUICE_LOG_ERROR` (0…4); anything beyond is taken as the nearest.
    static func level(abi: Int32) -> Logger.Level {
        switch abi {
        case ...0: .trace
        case 1: .debug
        case 2: .info
        case 3: .warning
        default: .error
        }
    }

    /// In JSON every batch is also a log record, for log shippers; in text the progress line shows batches.
    var batchListeners: [any BatchListener] { format == .json ? [BatchLogListener(logger: scheduler)] : [] }

    /// The run's closing line: the progress reporter's last line in text, a record of the host in JSON.
    func finish(_ summary: String, progress: ProgressReporter) {
        switch format {
        case .text: progress.finish("sluice: \(summary)")
        case .json:
            progress.finish(nil)
            host.info("\(summary)")
        }
    }
}
