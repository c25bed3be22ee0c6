import Foundation
import SluiceHost
import Testing

/// Values from outside the pipeline file: `${NAME}`, `${NAME:-default}`, `${file:PATH}`, `$${`, and `--set`.
struct PipelineValuesTests {
    static let template = """
        name: values
        batch_interval: BATCH
        sources:
          lines:
            plugin: file-watch
            config: {directory: DIRECTORY, start: earliest}
        sinks:
          out: {from: lines, plugin: console, config: {limit: LIMIT}}
        """

    static func yaml(batch: String = "1s", directory: String = "/tmp", limit: String = "3") -> String {
        template.replacingOccurrences(of: "BATCH", with: batch).replacingOccurrences(of: "DIRECTORY", with: directory)
            .replacingOccurrences(of: "LIMIT", with: limit)
    }

    static func problems(_ yaml: String, file: String = "/srv/p/values.yaml", environment: [String: String] = [:], overrides: [String] = [])
        -> [PipelineError]
    {
        do {
            let spec = try PipelineParser.parse(text: yaml, file: file, environment: environment, overrides: overrides)
            _ = try PipelineBuilder.resolve(spec, catalog: TestPaths.catalog)
            return []
        } catch let error as PipelineErrors {
            return error.errors
        } catch {
            Issue.record("unexpected \(error)")
            return []
        }
    }

    static func resolved(_ yaml: String, file: String = "/srv/p/values.yaml", environment: [String: String] = [:], overrides: [String] = [])
        throws -> ResolvedPipeline
    {
        let spec = try PipelineParser.parse(text: yaml, file: file, environment: environment, overrides: overrides)
        return try PipelineBuilder.resolve(spec, catalog: TestPaths.catalog)
    }

    @Test func variablesDefaultsAndLiteralsAreSubstituted() throws {
        let pipeline = try Self.resolved(
            Self.yaml(batch: "${INTERVAL:-250ms}", directory: "\"${DATA}/in-$${x}\"", limit: "\"${LIMIT}\""),
            environment: ["DATA": "/data", "LIMIT": "7"]
        )
        #expect(pipeline.spec.batchIntervalMilliseconds == 250)
        #expect(pipeline.sources[0].configJSON.contains(#""directory":"/data/in-${x}""#), "\(pipeline.sources[0].configJSON)")
        // A quoted whole reference still gives a number to an integer option.
        #expect(pipeline.sinks[0].configJSON.contains(#""limit":7"#), "\(pipeline.sinks[0].configJSON)")
        // An empty variable takes the default, as in the shells.
        let empty = try Self.resolved(Self.yaml(batch: "${INTERVAL:-2s}"), environment: ["INTERVAL": ""])
        #expect(empty.spec.batchIntervalMilliseconds == 2000)
    }

    @Test func aFileReferenceReadsTheFileRelativeToThePipeline() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try "/from/a/file\n".write(to: directory.appendingPathComponent("dir.txt"), atomically: true, encoding: .utf8)
        let file = directory.appendingPathComponent("p.yaml").path
        let pipeline = try Self.resolved(Self.yaml(directory: "\"${file:dir.txt}\""), file: file)
        #expect(pipeline.sources[0].configJSON.contains(#""directory":"/from/a/file""#), "\(pipeline.sources[0].configJSON)")
        #expect(pipeline.secrets.contains("/from/a/file"), "a value from a file is masked in messages")
    }

    @Test(arguments: [
        (Self.yaml(directory: "\"${DATA_DIR}\""), 6, "sources.lines.config.directory",
         "environment variable 'DATA_DIR' is not set (give a default with ${DATA_DIR:-VALUE})"),
        (Self.yaml(batch: "${1BAD}"), 2, "batch_interval", "'${1BAD}' is not a variable reference"),
        (Self.yaml(directory: "\"${DATA_DIR\""), 6, "sources.lines.config.directory", "has no closing '}'"),
        (Self.yaml(directory: "\"${file:missing.txt}\""), 6, "sources.lines.config.directory",
         "'${file:missing.txt}': /srv/p/missing.txt does not exist"),
    ])
    func aReferenceThatCannotBeResolvedIsLocated(yaml: String, line: Int, keyPath: String, message: String) throws {
        let errors = Self.problems(yaml)
        let error = try #require(errors.first { $0.message.contains(message) }, "\(errors)")
        #expect(error.line == line, "\(error)")
        #expect(error.keyPath == keyPath, "\(error)")
    }

    @Test func aValueFromTheEnvironmentIsMaskedInErrors() throws {
        let errors = Self.problems(Self.yaml(limit: "\"${LIMIT}\""), environment: ["LIMIT": "plenty-of-them"])
        let error = try #require(errors.first, "an integer option refuses the text")
        #expect(error.line == 8)
        #expect(error.message == "expected an integer, got '***'", "\(error)")
    }

    @Test func settingsReplaceAndAddValues() throws {
        let pipeline = try Self.resolved(
            Self.yaml(),
            overrides: ["batch_interval=500ms", "sources.lines.config.glob=*.log", "sinks.out.config.limit=9"]
        )
        #expect(pipeline.spec.batchIntervalMilliseconds == 500)
        #expect(pipeline.sources[0].configJSON.contains(#""glob":"*.log""#), "\(pipeline.sources[0].configJSON)")
        #expect(pipeline.sinks[0].configJSON.contains(#""limit":9"#), "\(pipeline.sinks[0].configJSON)")
    }

    @Test func aSettingWithADottedOptionNameKeepsItWhole() throws {
        // Under `config`, a new key takes the rest of the path: plugin options such as eventhubs.maxRate hold dots.
        let errors = Self.problems(Self.yaml(), overrides: ["sources.lines.config.some.dotted=1"])
        #expect(errors.contains { $0.keyPath == "sources.lines.config.some.dotted" && $0.message.contains("unknown option 'some.dotted'") },
                "\(errors)")
    }

    @Test func aSettingIsCheckedLikeTheFile() throws {
        let errors = Self.problems(Self.yaml(), overrides: ["batch_interval=10", "name.inner=x", "nonsense"])
        #expect(errors.contains { $0.line == 2 && $0.keyPath == "batch_interval" && $0.message.contains("add a unit") }, "\(errors)")
        #expect(errors.contains { $0.message.contains("--set name.inner: 'name' is not a mapping") }, "\(errors)")
        #expect(errors.contains { $0.message.contains("--set 'nonsense' is not KEY.PATH=VALUE") }, "\(errors)")
    }
}
