import Foundation
import Testing

/// A C state-updater plugin (ABI 1.3) as updateStateByKey's function in a pipeline file, through `sluice run`, and
/// `sluice plugins check` / `list` on it.
@Suite(.timeLimit(.minutes(3)))
struct StateUpdaterPipelineTests {
    /// Lines of the input, three per batch (max_records_per_partition: 3): keys come, go idle and come back.
    static let lines = [
        "a b a", "c", "a",  // batch 0
        "b", "b b", "a",  // batch 1: c idle once
        "c c c", "d", "a a",  // batch 2: c back, b idle once
        "a", "d", "a",  // batch 3: b removed (second idle batch), c idle once
    ]

    /// What c_recent_state.c keeps, computed independently: per key, its counts in its last three batches with
    /// records and how many idle batches in a row it has had; a key's second idle batch removes it. Spark's
    /// updateStateByKey emits (key, state) for every key with state, every batch.
    static func expected(batches: [[String]]) -> [[String: String]] {
        var state: [String: (idle: Int, sums: [Int])] = [:]
        return batches.map { words in
            let counts = Dictionary(words.map { ($0, 1) }, uniquingKeysWith: +)
            for key in Array(state.keys) where counts[key] == nil {
                if state[key]!.idle >= 1 { state[key] = nil } else { state[key]!.idle += 1 }
            }
            for (key, count) in counts {
                state[key] = (0, Array(((state[key]?.sums ?? []) + [count]).suffix(3)))
            }
            return state.mapValues { "\($0.idle);" + $0.sums.map(String.init).joined(separator: ",") }
        }
    }

    /// The `key<TAB>state` files of a files sink, in batch order.
    static func outputs(_ directory: URL, prefix: String) throws -> [[String: String]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix(prefix + "-") && $0.hasSuffix(".tsv") }
            .sorted { Int($0.dropFirst(prefix.count + 1).dropLast(4))! < Int($1.dropFirst(prefix.count + 1).dropLast(4))! }
        return try names.map { name in
            var states: [String: String] = [:]
            for line in try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8).split(separator: "\n") {
                let fields = line.split(separator: "\t", maxSplits: 1)
                states[String(fields[0])] = fields.count > 1 ? String(fields[1]) : ""
            }
            return states
        }
    }

    /// A work directory with the plugin, the input and the pipeline file.
    static func prepare() throws -> (work: URL, plugins: URL) {
        let work = try Support.makeTemporaryDirectory()
        let plugins = work.appendingPathComponent("plugins")
        let input = work.appendingPathComponent("input")
        for directory in [plugins, input, work.appendingPathComponent("out")] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        try CFixtures.sharedObject("c_recent_state.c", to: plugins.appendingPathComponent("librecent.so"))
        try (lines.joined(separator: "\n") + "\n").write(to: input.appendingPathComponent("words.txt"), atomically: true, encoding: .utf8)
        try """
            name: recent
            batch_interval: 100ms
            sources:
              lines: {plugin: file-watch, max_records_per_partition: 3, config: {directory: input, start: earliest}}
            stages:
              pairs: {from: lines, plugin: split, config: {output: pairs}}
              recent: {from: pairs, op: updateStateByKey, function: c-recent, partitions: 2}
            sinks:
              recent: {from: recent, plugin: files, config: {prefix: out/recent, suffix: tsv, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        return (work, plugins)
    }

    /// Every batch's output against the reference: four batches with input, then three idle ones (every key ages out).
    static func checkOutputs(_ work: URL, _ stderr: String) throws {
        let words = stride(from: 0, to: lines.count, by: 3).map { lines[$0..<$0 + 3].flatMap { $0.split(separator: " ").map(String.init) } }
        let expected = expected(batches: words + [[], [], []])
        let got = try outputs(work.appendingPathComponent("out"), prefix: "recent")
        #expect(got.count == expected.count, "stderr:\n\(stderr)")
        for n in 0..<min(got.count, expected.count) {
            #expect(got[n] == expected[n], "batch \(n)")
        }
        #expect(expected[1]["c"] == "1;1" && expected[3]["b"] == nil && expected[3]["c"] == "1;1,3", "the input exercises idle keys")
        #expect(got.last == [:], "every key is removed after two idle batches")
    }

    @Test func aCStateUpdaterRunsUpdateStateByKeyInAPipelineFile() throws {
        let (work, plugins) = try Self.prepare()
        defer { try? FileManager.default.removeItem(at: work) }
        let result = try Support.sluice(
            ["run", "pipeline.yaml", "--until-idle", "--idle-batches", "3", "--progress", "plain", "--plugin-dir", plugins.path],
            directory: work,
            timeout: 60
        )
        #expect(result.status == 0, "stderr:\n\(result.stderr)")
        try Self.checkOutputs(work, result.stderr)
    }

    /// The plugin's state is checkpointed with the stage: stopped after two batches and started again, the run's
    /// output is the same as without the stop (the new instance knows nothing; the state comes back from the host).
    @Test func itsStateSurvivesARestartFromTheCheckpoint() throws {
        let (work, plugins) = try Self.prepare()
        defer { try? FileManager.default.removeItem(at: work) }
        let common = ["run", "pipeline.yaml", "--checkpoint-dir", "checkpoint", "--progress", "plain", "--plugin-dir", plugins.path]
        let first = try Support.sluice(common + ["--batches", "2"], directory: work, timeout: 60)
        #expect(first.status == 0, "stderr:\n\(first.stderr)")
        #expect(try Self.outputs(work.appendingPathComponent("out"), prefix: "recent").count == 2)
        let second = try Support.sluice(common + ["--until-idle", "--idle-batches", "3"], directory: work, timeout: 60)
        #expect(second.status == 0, "stderr:\n\(second.stderr)")
        try Self.checkOutputs(work, first.stderr + second.stderr)
    }

    @Test func pluginsCheckPassesOnItAndReportsAMalformedOne() throws {
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let good = work.appendingPathComponent("librecent.so")
        let bad = work.appendingPathComponent("libbad.so")
        try CFixtures.sharedObject("c_recent_state.c", to: good)
        try CFixtures.sharedObject("c_recent_state.c", to: bad, flags: ["-DSLUICE_TEST_BAD_LENGTH"])
        let passed = try Support.sluice(["plugins", "check", good.path])
        #expect(passed.status == 0, "\(passed.stdout)\(passed.stderr)")
        #expect(passed.stdout.contains("[ok] updates a key without values"), "\(passed.stdout)")
        let failed = try Support.sluice(["plugins", "check", bad.path])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        #expect(failed.stdout.contains("[FAIL] updates a new key"), "\(failed.stdout)")
        #expect(failed.stdout.contains("returned a state of 1099511627776 bytes"), "\(failed.stdout)")

        try FileManager.default.removeItem(at: bad)
        let list = try Support.sluice(["plugins", "list", "--plugin-dir", work.path])
        let line = list.stdout.split(separator: "\n").first { $0.hasPrefix("c-recent") }
        #expect(line?.contains("state-updater") == true && line?.contains("1.3") == true, "\(list.stdout)")
    }
}
