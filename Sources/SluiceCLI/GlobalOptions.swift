import ArgumentParser
import Foundation
import Logging
import SluiceHost
import SluiceLoader
import SluiceSDK

/// Options every command that loads plugins shares.
struct PluginOptions: ParsableArguments {
    @Option(
        name: .customLong("plugin-dir"),
        help: ArgumentHelp(
            "A directory to search for plugin .so files (repeatable). Searched before $SLUICE_PLUGIN_PATH and "
                + "the directory of the sluice executable.",
            valueName: "dir"
        )
    )
    var pluginDirectories: [String] = []

    @Flag(name: .customLong("quiet-refusals"), help: "Do not print plugin files that were refused.")
    var quietRefusals = false

    @Flag(
        name: .customLong("allow-insecure-plugins"),
        help: ArgumentHelp(
            "Load plugin files that are writable by group or others, or owned by another user (or in such a "
                + "directory), with a warning, instead of refusing them."
        )
    )
    var allowInsecurePlugins = false

    /// Scans the search path and prints a warning line for each refused file and each insecure file loaded anyway
    /// (the latter even with --quiet-refusals: it is what --allow-insecure-plugins promises).
    func catalog() -> PluginCatalog {
        let catalog = PluginCatalog.scan(
            directories: PluginCatalog.searchPath(explicit: pluginDirectories),
            allowInsecure: allowInsecurePlugins
        )
        if !quietRefusals {
            for refusal in catalog.refusals { printError("sluice: warning: \(refusal)") }
        }
        for warning in catalog.warnings { printError("sluice: warning: \(warning)") }
        return catalog
    }
}

/// Log levels: the least severe message `sluice run` shows, the host's, the scheduler's and the plugins' alike.
enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, warning, error

    var level: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .warning: .warning
        case .error: .error
        }
    }
}

extension ProgressMode: ExpressibleByArgument {}

extension LogFormat: ExpressibleByArgument {}

/// Writes a line to standard error.
func printError(_ line: String) {
    // Anything shaped like a credential assignment (`SharedAccessKey=…`) loses its value, whoever quoted it.
    FileHandle.standardError.write(Data((SecretMask.mask(line) + "\n").utf8))
}

/// What changes a pipeline file's values from outside it: `--set`, and the environment for `${NAME}`.
struct PipelineValueOptions: ParsableArguments {
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Set a value of the pipeline file, as if written there (repeatable): KEY.PATH=VALUE, e.g. "
                + "--set batch_interval=500ms --set sources.lines.config.directory=/data/in",
            valueName: "key.path=value"
        )
    )
    var settings: [String] = []
}

/// Parses and resolves a pipeline file, printing every problem; throws ExitCode(2) when there are any. `${NAME}`
/// reads the process environment: this is the one place that hands it to the library.
func loadPipeline(_ path: String, catalog: PluginCatalog, values: PipelineValueOptions) throws -> ResolvedPipeline {
    do {
        let spec = try PipelineParser.parse(
            path: path, environment: ProcessInfo.processInfo.environment, overrides: values.settings
        )
        return try PipelineBuilder.resolve(spec, catalog: catalog)
    } catch {
        for problem in error.errors { printError(problem.description) }
        let count = error.errors.count
        printError("sluice: \(path): \(count) error\(count == 1 ? "" : "s")")
        throw ExitCode(2)
    }
}
