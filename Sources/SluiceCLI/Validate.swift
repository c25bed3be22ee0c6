import ArgumentParser
import SluiceHost

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a pipeline file without running it.",
        discussion: """
            Reports every problem with its file, line, column and key path: YAML syntax, unknown keys, missing \
            plugins, plugins of the wrong kind, options their schemas do not accept, references to streams \
            that do not exist, and cycles. Then each plugin checks its own configuration without starting \
            (no connections, threads or files). Exits 0 when the file is valid, 2 otherwise.
            """
    )

    @Argument(help: "The pipeline file.")
    var file: String

    @OptionGroup var plugins: PluginOptions
    @OptionGroup var values: PipelineValueOptions

    func run() throws {
        let resolved = try loadPipeline(file, catalog: plugins.catalog(), values: values)
        let check = ConfigurationCheck.run(resolved)
        if !check.errors.isEmpty {
            for problem in check.errors { printError(problem.description) }
            printError("sluice: \(file): \(check.errors.count) error\(check.errors.count == 1 ? "" : "s")")
            throw ExitCode(2)
        }
        for instance in check.unchecked {
            printError("sluice: note: \(instance) is built for an older ABI and cannot check its configuration without starting; its options were checked against its schema only")
        }
        let spec = resolved.spec
        print(
            "\(file): pipeline '\(spec.name)' is valid: \(spec.sources.count) source(s), \(spec.stages.count) stage(s), "
                + "\(spec.sinks.count) sink(s), batch interval \(spec.batchIntervalMilliseconds) ms"
        )
    }
}
