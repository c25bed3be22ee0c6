import Foundation
import Testing

/// A C function library (built with gcc, declared by a manifest) used by `sluice run` for map, filter and reduce.
@Suite(.timeLimit(.minutes(3)))
struct FunctionPipelineTests {
    @Test func libraryFunctionsMapFilterAndReduceInAPipeline() throws {
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let fixtures = Support.repoRoot.appendingPathComponent("Tests/SluiceHostTests/Fixtures")
        let functions = work.appendingPathComponent("functions")
        try FileManager.default.createDirectory(at: functions, withIntermediateDirectories: true)
        try CFixtures.sharedObject("temps.c", to: functions.appendingPathComponent("libtemps.so"))
        try FileManager.default.copyItem(
            at: fixtures.appendingPathComponent("temps.functions.yaml"),
            to: functions.appendingPathComponent("temps.functions.yaml")
        )
        let input = work.appendingPathComponent("input")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try "12\n31\n-5\n40\nnot a number\n30.5\n".write(to: input.appendingPathComponent("celsius.txt"), atomically: true, encoding: .utf8)
        let data = Support.repoRoot.appendingPathComponent("examples/wordcount/data").path
        try """
            name: functions
            batch_interval: 200ms
            sources:
              celsius: {plugin: file-watch, config: {directory: input, start: earliest}}
              lines: {plugin: file-watch, config: {directory: "\(data)", glob: "*.txt", start: earliest}}
            stages:
              fahrenheit: {from: celsius, op: map, function: temps.to_fahrenheit_batch}
              hot: {from: fahrenheit, op: filter, function: temps.is_hot}
              pairs: {from: lines, plugin: split, config: {lowercase: true, output: pairs, separators: " \\t.,;:!?\\"()"}}
              summed: {from: pairs, op: reduceByKey, function: temps.add_batch}
              words: {from: lines, plugin: split, config: {lowercase: true, separators: " \\t.,;:!?\\"()"}}
              counted: {from: words, op: countByValue}
            sinks:
              hot: {from: hot, plugin: files, config: {prefix: out/hot, suffix: txt}}
              summed: {from: summed, plugin: files, config: {prefix: out/summed, suffix: tsv, format: tsv}}
              counted: {from: counted, plugin: files, config: {prefix: out/counted, suffix: tsv, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: work.appendingPathComponent("out"), withIntermediateDirectories: true)

        let result = try Support.sluice(
            ["run", "pipeline.yaml", "--until-idle", "--progress", "plain", "--plugin-dir", functions.path],
            directory: work,
            timeout: 60
        )
        #expect(result.status == 0, "stderr:\n\(result.stderr)")
        #expect(!result.stderr.contains("refused"), "the library's .so is not taken for a plugin:\n\(result.stderr)")
        #expect(result.stderr.contains("'not a number' is not a number"), "the bad value is reported:\n\(result.stderr)")

        let out = work.appendingPathComponent("out")
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        func lines(_ prefix: String) throws -> [String] {
            try files.filter { $0.hasPrefix(prefix) }.flatMap {
                try String(contentsOf: out.appendingPathComponent($0), encoding: .utf8).split(separator: "\n").map(String.init)
            }
        }
        // In Fahrenheit, everything but -5 °C (23 °F) is over 30.
        #expect(try lines("hot") == ["53.6", "87.8", "104.0", "86.9"])
        // reduceByKey with the library's add over (word, 1) pairs counts like countByValue.
        #expect(try lines("summed").sorted() == (try lines("counted")).sorted())
        #expect(try lines("summed").count > 50)
    }

    @Test func aCReducerPluginRunsAnInverseWindow() throws {
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let plugins = work.appendingPathComponent("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        try CFixtures.sharedObject("c_sum_reducer.c", to: plugins.appendingPathComponent("libcsum.so"))
        let data = Support.repoRoot.appendingPathComponent("examples/wordcount/data").path
        try """
            name: reducer
            batch_interval: 200ms
            sources:
              lines: {plugin: file-watch, max_records_per_partition: 12, config: {directory: "\(data)", glob: "*.txt", start: earliest}}
            stages:
              pairs: {from: lines, plugin: split, config: {lowercase: true, output: pairs, separators: " \\t.,;:!?\\"()"}}
              plugged: {from: pairs, op: reduceByKeyAndWindow, function: c-sum, inverse: true, window: 400ms}
              words: {from: lines, plugin: split, config: {lowercase: true, separators: " \\t.,;:!?\\"()"}}
              builtin: {from: words, op: countByValueAndWindow, window: 400ms}
            sinks:
              plugged: {from: plugged, plugin: files, config: {prefix: out/plugged, suffix: tsv, format: tsv}}
              builtin: {from: builtin, plugin: files, config: {prefix: out/builtin, suffix: tsv, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: work.appendingPathComponent("out"), withIntermediateDirectories: true)
        let result = try Support.sluice(
            ["run", "pipeline.yaml", "--until-idle", "--progress", "plain", "--plugin-dir", plugins.path],
            directory: work,
            timeout: 60
        )
        #expect(result.status == 0, "stderr:\n\(result.stderr)")
        let out = work.appendingPathComponent("out")
        let plugged = try WindowedPipelineTests.outputs(out, prefix: "plugged")
        let builtin = try WindowedPipelineTests.outputs(out, prefix: "builtin")
        #expect(plugged.count == 5)
        #expect(plugged == builtin, "the C reducer's inverse window equals the built-in count")
        #expect(plugged.first?.isEmpty == false)
    }
}
