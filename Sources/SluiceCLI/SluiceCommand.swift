import ArgumentParser

/// `sluice`: the command-line front end of the Sluice host.
public struct SluiceCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Run micro-batch stream pipelines built from plugins.",
        discussion: """
            A pipeline file (YAML) names sources, stages and sinks; each is a plugin (.so) or a built-in \
            operation. Batches run on a fixed interval, like Spark Streaming's DStreams.

            Plugins are searched in --plugin-dir, then $SLUICE_PLUGIN_PATH (colon-separated), then the \
            directory of the sluice executable.
            """,
        version: "0.1.0",
        subcommands: [
            Run.self, Validate.self, Plugins.self, Checkpoints.self, Bench.self, Serve.self, Submit.self, Status.self, Logs.self,
            Stop.self, Top.self,
        ]
    )

    public init() {}
}

extension SluiceCommand {
    /// Parses the process arguments and runs the chosen command; exits the process.
    public static func start() async { await main() }
}
