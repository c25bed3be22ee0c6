import ArgumentParser
import SluiceHost

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a pipeline file without running it.",
        discussion: """
            Reports every problem with its file, line, column and key path: YAML syntax, unknown keys, missing \
            plugins, plugins of the wrong kind, options their schemas do not accept, references to streams \
            that do not exist, and cycles. Exits 0 when the file is valid, 2 otherwise.
            """
    )

    @Argument(help: "The pipeline file.")
    var file: String

    @OptionGroup var plugins: PluginOptions
    @OptionGroup var values: PipelineValueOptions

    func run() throws {
        let resolved = try loadPipeline(file, catalog: plugins.catalog(), values: values)
        let spec = resolved.spec
        print(
            "\(file): pipeline '\(spec.name)' is valid: \(spec.sources.count) source(s), \(spec.stages.count) stage(s), "
                + "\(spec.sinks.count) sink(s), batch interval \(spec.batchIntervalMilliseconds) ms"
        )
    }
}
