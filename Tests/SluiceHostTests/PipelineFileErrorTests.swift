import Foundation
import SluiceHost
import SluiceLoader
import Testing

/// Every class of pipeline-file error names the file, the line and the key path.
struct PipelineFileErrorTests {
    static let valid = """
        name: wc
        batch_interval: 1s
        sources:
          lines:
            plugin: file-watch
            config: {directory: /tmp, start: earliest}
        stages:
          words: {from: lines, plugin: split}
          counts: {from: words, op: countByValue}
        sinks:
          out: {from: counts, plugin: console}
        """

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var yaml: String
        var line: Int
        var keyPath: String
        var message: String
        var testDescription: String { name }
    }

    /// `valid` with one line replaced.
    static func replacing(_ line: Int, with text: String) -> String {
        var lines = valid.components(separatedBy: "\n")
        lines[line - 1] = text
        return lines.joined(separator: "\n")
    }

    static let cases: [Case] = [
        Case(name: "YAML syntax", yaml: replacing(8, with: "  words: {from: lines, plugin: split"), line: 9, keyPath: "",
             message: "invalid YAML"),
        Case(name: "not a mapping", yaml: "- just\n- a list\n", line: 1, keyPath: "", message: "must be a mapping"),
        Case(name: "unknown top-level key", yaml: replacing(2, with: "batch_intervall: 1s"), line: 2,
             keyPath: "batch_intervall", message: "did you mean 'batch_interval'?"),
        Case(name: "missing required key", yaml: replacing(1, with: "# no name"), line: 2, keyPath: "",
             message: "missing required key 'name'"),
        Case(name: "bad duration", yaml: replacing(2, with: "batch_interval: 10"), line: 2, keyPath: "batch_interval",
             message: "add a unit"),
        Case(name: "repeated key", yaml: valid + "\nname: again", line: 1, keyPath: "",
             message: "key 'name' appears more than once"),
        Case(name: "invalid stream name", yaml: replacing(8, with: "  my words: {from: lines, plugin: split}"), line: 8,
             keyPath: "stages.my words", message: "not a valid name"),
        Case(name: "source without plugin", yaml: replacing(5, with: "    max_records_per_partition: 10"), line: 5,
             keyPath: "sources.lines", message: "missing required key 'plugin'"),
        Case(name: "unknown source key", yaml: replacing(6, with: "    confg: {directory: /tmp}"), line: 6,
             keyPath: "sources.lines.confg", message: "did you mean 'config'?"),
        Case(name: "bad max records", yaml: replacing(6, with: "    max_records_per_partition: -3"), line: 6,
             keyPath: "sources.lines.max_records_per_partition", message: "positive integer"),
        Case(name: "unknown plugin", yaml: replacing(5, with: "    plugin: file-wach"), line: 5,
             keyPath: "sources.lines.plugin", message: "did you mean 'file-watch'?"),
        Case(name: "plugin of the wrong kind", yaml: replacing(11, with: "  out: {from: counts, plugin: split}"), line: 11,
             keyPath: "sinks.out.plugin", message: "is a transform, but sinks need a sink plugin"),
        Case(name: "unknown plugin option",
             yaml: replacing(6, with: "    config: {directry: /tmp, start: earliest}"), line: 6,
             keyPath: "sources.lines.config.directry", message: "did you mean 'directory'?"),
        Case(name: "missing required option", yaml: replacing(6, with: "    config: {start: earliest}"), line: 6,
             keyPath: "sources.lines.config", message: "missing required option 'directory'"),
        Case(name: "option of the wrong type",
             yaml: replacing(11, with: "  out: {from: counts, plugin: console, config: {limit: many}}"), line: 11,
             keyPath: "sinks.out.config.limit", message: "expected an integer, got 'many'"),
        Case(name: "option value not allowed",
             yaml: replacing(6, with: "    config: {directory: /tmp, start: earlyest}"), line: 6,
             keyPath: "sources.lines.config.start", message: "did you mean 'earliest'?"),
        Case(name: "unknown operation", yaml: replacing(9, with: "  counts: {from: words, op: countByVal}"), line: 9,
             keyPath: "stages.counts.op", message: "did you mean 'countByValue'?"),
        Case(name: "window not a multiple of the batch interval",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValueAndWindow, window: 2500ms}"), line: 9,
             keyPath: "stages.counts.window", message: "2500ms is not a multiple of batch_interval (1s)"),
        Case(name: "slide not a multiple of the batch interval",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValueAndWindow, window: 30s, slide: 1.5s}"), line: 9,
             keyPath: "stages.counts.slide", message: "1500ms is not a multiple of batch_interval (1s)"),
        Case(name: "windowed operation without a window",
             yaml: replacing(9, with: "  counts: {from: words, op: reduceByKeyAndWindow}"), line: 9,
             keyPath: "stages.counts", message: "missing required key 'window'"),
        Case(name: "window on an operation without one",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValue, window: 10s}"), line: 9,
             keyPath: "stages.counts.window", message: "applies only to windowed operations"),
        Case(name: "unknown function",
             yaml: replacing(9, with: "  counts: {from: words, op: reduceByKey, function: summ}"), line: 9,
             keyPath: "stages.counts.function", message: "unknown function 'summ' (did you mean 'sum'?)"),
        Case(name: "function on a counting operation",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValue, function: max}"), line: 9,
             keyPath: "stages.counts.function", message: "does not apply to countByValue"),
        Case(name: "inverse of a function without one",
             yaml: replacing(9, with: "  counts: {from: words, op: reduceByKeyAndWindow, function: max, window: 5s, inverse: true}"),
             line: 9, keyPath: "stages.counts.inverse", message: "max has no inverse"),
        Case(name: "operator key on a plugin stage",
             yaml: replacing(8, with: "  words: {from: lines, plugin: split, window: 5s}"), line: 8,
             keyPath: "stages.words.window", message: "applies only to built-in operations"),
        Case(name: "partitions of an unkeyed operation",
             yaml: replacing(9, with: "  counts: {from: words, op: count, partitions: 4}"), line: 9,
             keyPath: "stages.counts.partitions", message: "does not apply to count"),
        Case(name: "join of streams with different intervals",
             yaml: replacing(9, with: "  recent: {from: words, op: window, window: 2s, slide: 2s}\n  counts: {from: [words, recent], op: join}"),
             line: 10, keyPath: "stages.counts.from[1]",
             message: "'words' produces a batch every 1s but 'recent' every 2s; join needs streams with the same interval"),
        Case(name: "join of one stream", yaml: replacing(9, with: "  counts: {from: words, op: leftOuterJoin}"), line: 9,
             keyPath: "stages.counts.from", message: "leftOuterJoin reads two streams (from: [left, right]), got 1"),
        Case(name: "union of one stream", yaml: replacing(9, with: "  counts: {from: words, op: union}"), line: 9,
             keyPath: "stages.counts.from", message: "union reads two or more streams"),
        Case(name: "repartition without partitions", yaml: replacing(9, with: "  counts: {from: words, op: repartition}"),
             line: 9, keyPath: "stages.counts", message: "missing required key 'partitions'"),
        Case(name: "window of a windowed stream not a multiple of its slide",
             yaml: replacing(9, with: "  recent: {from: words, op: window, window: 2s, slide: 2s}\n  counts: {from: recent, op: countByValueAndWindow, window: 3s, slide: 2s}"),
             line: 10, keyPath: "stages.counts.op", message: "must be multiples of 2s, the interval of 'recent'"),
        Case(name: "timeout on an operation without one",
             yaml: replacing(9, with: "  counts: {from: words, op: updateStateByKey, timeout: 10s}"), line: 9,
             keyPath: "stages.counts.timeout", message: "applies only to mapWithState"),
        Case(name: "plugin and op together",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValue, plugin: split}"), line: 9,
             keyPath: "stages.counts", message: "either 'plugin' or 'op'"),
        Case(name: "stage without plugin or op", yaml: replacing(9, with: "  counts: {from: words}"), line: 9,
             keyPath: "stages.counts", message: "missing 'plugin'"),
        Case(name: "unknown input stream", yaml: replacing(8, with: "  words: {from: line, plugin: split}"), line: 8,
             keyPath: "stages.words.from", message: "did you mean 'lines'?"),
        Case(name: "sink reads an unknown stream", yaml: replacing(11, with: "  out: {from: count, plugin: console}"),
             line: 11, keyPath: "sinks.out.from", message: "did you mean 'counts'?"),
        Case(name: "cycle", yaml: replacing(8, with: "  words: {from: counts, plugin: split}"), line: 8,
             keyPath: "stages.words", message: "cycle"),
        Case(name: "stage named like a source", yaml: replacing(8, with: "  lines: {from: lines, plugin: split}"),
             line: 8, keyPath: "stages.lines", message: "already the name of a source"),
        Case(name: "unset variable in a plugin option",
             yaml: replacing(6, with: "    config: {directory: \"${DATA_DIR}/in\", start: earliest}"), line: 6,
             keyPath: "sources.lines.config.directory",
             message: "environment variable 'DATA_DIR' is not set (give a default with ${DATA_DIR:-VALUE})"),
        Case(name: "unset variable in a sequence",
             yaml: replacing(9, with: "  counts: {from: [words, \"${OTHER}\"], op: union}"), line: 9,
             keyPath: "stages.counts.from[1]", message: "environment variable 'OTHER' is not set"),
        Case(name: "batch interval past Int", yaml: replacing(2, with: "batch_interval: 999999999999999999h"), line: 2,
             keyPath: "batch_interval", message: "'999999999999999999h' is longer than the longest allowed here, 24h"),
        Case(name: "batch interval past a day", yaml: replacing(2, with: "batch_interval: 10000000h"), line: 2,
             keyPath: "batch_interval", message: "longer than the longest allowed here, 24h"),
        Case(name: "window of too many batches",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValueAndWindow, window: 200000s}"), line: 9,
             keyPath: "stages.counts.window", message: "200000s is 200000 batch intervals; at most 100000 are allowed"),
        Case(name: "window past Int",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValueAndWindow, window: 999999999999999999h}"),
             line: 9, keyPath: "stages.counts.window", message: "is longer than the longest allowed here"),
        Case(name: "too many partitions",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValue, partitions: 100000000000}"), line: 9,
             keyPath: "stages.counts.partitions", message: "100000000000 is more than the largest value allowed here, 1024"),
        Case(name: "records per partition past Int",
             yaml: replacing(6, with: "    max_records_per_partition: 99999999999999999999999"), line: 6,
             keyPath: "sources.lines.max_records_per_partition", message: "is more than the largest value allowed here"),
        Case(name: "control character", yaml: replacing(6, with: "    config: {directory: \"/t\u{1}mp\"}"), line: 6,
             keyPath: "", message: "control characters are not allowed (character U+0001)"),
        Case(name: "output path leaving the pipeline directory",
             yaml: replacing(11, with: "  out: {from: counts, plugin: files, config: {prefix: ../elsewhere/c}}"), line: 11,
             keyPath: "sinks.out.config.prefix",
             message: "'../elsewhere/c' leaves the pipeline file's directory (/pipelines); 'prefix' is written to"),
        Case(name: "value not matching the option's pattern",
             yaml: replacing(11, with: "  out: {from: counts, plugin: files, config: {prefix: out/c, suffix: a/b}}"), line: 11,
             keyPath: "sinks.out.config.suffix", message: "'a/b' is not allowed for option 'suffix' (it must match ^[^/]*$)"),
        Case(name: "config on a built-in op",
             yaml: replacing(9, with: "  counts: {from: words, op: countByValue, config: {x: 1}}"), line: 9,
             keyPath: "stages.counts.config", message: "applies only to plugin stages"),
    ]

    /// Every problem parsing and resolving `yaml` finds.
    static func problems(_ yaml: String, file: String) -> [PipelineError] {
        let spec: PipelineSpec
        do {
            spec = try PipelineParser.parse(text: yaml, file: file)
        } catch {
            return error.errors
        }
        do {
            _ = try PipelineBuilder.resolve(spec, catalog: TestPaths.catalog)
        } catch {
            return error.errors
        }
        return []
    }

    @Test(arguments: cases)
    func errorNamesFileLineAndKeyPath(_ c: Case) throws {
        let file = "/pipelines/\(c.name.replacingOccurrences(of: " ", with: "-")).yaml"
        let errors = Self.problems(c.yaml, file: file)
        #expect(!errors.isEmpty, "expected an error for \(c.name)")
        let match = errors.first { $0.message.contains(c.message) }
        let found = try #require(match, "no error mentions \"\(c.message)\"; got:\n\(errors.map(\.description).joined(separator: "\n"))")
        #expect(found.file == file)
        #expect(found.line == c.line, "\(found)")
        #expect(found.keyPath == c.keyPath, "\(found)")
        #expect(found.description.hasPrefix("\(file):\(c.line):"))
        if !c.keyPath.isEmpty { #expect(found.description.contains(" \(c.keyPath): ")) }
    }

    @Test func aliasesThatExpandPastTheLimitAreRefused() {
        // Nine levels of ten aliases each: 10^9 nodes once expanded, a few hundred bytes written.
        var yaml = "x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
        for level in 1...9 { yaml += "x\(level): &x\(level) [" + Array(repeating: "*x\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        yaml += Self.valid.replacingOccurrences(of: "start: earliest", with: "start: earliest, extra: *x9")
        let errors = Self.problems(yaml, file: "/p.yaml")
        #expect(errors.count == 1)
        #expect(errors.first?.message.contains("expands to more than 1000000 YAML nodes") == true, "\(errors)")
    }

    // Ordering used to be cubic in the stages (600 took 4.5 s; 3000 would take minutes): the time limit catches it.
    @Test(.timeLimit(.minutes(1))) func aLongChainOfStagesResolvesInDependencyOrder() throws {
        // Written last stage first, so every stage waits for the one after it in the file.
        let count = 3000
        var yaml = "name: chain\nbatch_interval: 1s\nsources:\n  s0: {plugin: file-watch, config: {directory: /tmp}}\nstages:\n"
        for index in stride(from: count, through: 1, by: -1) {
            yaml += "  t\(index): {from: \(index == 1 ? "s0" : "t\(index - 1)"), plugin: split}\n"
        }
        yaml += "sinks:\n  out: {from: t\(count), plugin: console}\n"
        let spec = try PipelineParser.parse(text: yaml, file: "/chain.yaml")
        let resolved = try PipelineBuilder.resolve(spec, catalog: TestPaths.catalog)
        #expect(resolved.stages.map(\.stage.name) == (1...count).map { "t\($0)" })
    }

    @Test func theValidPipelineResolves() throws {
        let spec = try PipelineParser.parse(text: Self.valid, file: "/pipelines/ok.yaml")
        let resolved = try PipelineBuilder.resolve(spec, catalog: TestPaths.catalog)
        #expect(resolved.stages.map(\.stage.name) == ["words", "counts"])
        #expect(spec.batchIntervalMilliseconds == 1000)
        // Resolving keeps only the keys written; schema defaults are added when the instance is created
        // (ConfigDefaultsTests). The schema-typed value is JSON.
        #expect(resolved.sources[0].configJSON.contains("\"start\":\"earliest\""))
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let yaml = Self.replacing(5, with: "    plugin: nope").replacingOccurrences(of: "plugin: console", with: "plugin: nada")
        let spec = try PipelineParser.parse(text: yaml, file: "/p.yaml")
        let error = #expect(throws: PipelineErrors.self) { try PipelineBuilder.resolve(spec, catalog: TestPaths.catalog) }
        #expect(error?.errors.map(\.line) == [5, 11])
    }

    @Test func outputPathsInsideThePipelineDirectoryOrAbsoluteAreAccepted() throws {
        for (prefix, resolved) in [("out/c", "/srv/p/out/c"), ("out/../c", "/srv/p/c"), ("/var/out/c", "/var/out/c")] {
            let yaml = Self.valid.replacingOccurrences(
                of: "out: {from: counts, plugin: console}", with: "out: {from: counts, plugin: files, config: {prefix: \(prefix)}}")
            let spec = try PipelineParser.parse(text: yaml, file: "/srv/p/wc.yaml")
            let pipeline = try PipelineBuilder.resolve(spec, catalog: TestPaths.catalog)
            #expect(pipeline.sinks[0].configJSON.contains("\"prefix\":\"\(resolved)\""), "\(pipeline.sinks[0].configJSON)")
        }
    }

    @Test func relativePathOptionsResolveAgainstThePipelineFile() throws {
        let yaml = Self.valid.replacingOccurrences(of: "directory: /tmp", with: "directory: inbox")
        let spec = try PipelineParser.parse(text: yaml, file: "/srv/pipelines/wc.yaml")
        let resolved = try PipelineBuilder.resolve(spec, catalog: TestPaths.catalog)
        #expect(resolved.sources[0].configJSON.contains("\"directory\":\"/srv/pipelines/inbox\""))
    }

    @Test func aMissingFileIsNamed() {
        let error = #expect(throws: PipelineErrors.self) { try PipelineParser.parse(path: "/no/such/pipeline.yaml") }
        #expect(error?.description == "/no/such/pipeline.yaml:1:1: error: pipeline file does not exist")
    }

    @Test(arguments: [("250ms", 250), ("1s", 1000), ("1.5s", 1500), ("2m", 120_000), ("1h", 3_600_000)])
    func durations(text: String, milliseconds: Int) {
        #expect(parseDuration(text) == milliseconds)
    }

    @Test(arguments: ["10", "s", "-1s", "1 parsec", "ms"])
    func notDurations(text: String) {
        #expect(parseDuration(text) == nil)
    }
}
