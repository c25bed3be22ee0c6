import Foundation
import Testing

/// A work directory with a file-watch → `c-probe` → files pipeline, for the tests of how `sluice run` stops, fails,
/// checkpoints and calls plugins. The probe (`Fixtures/probe_transform.c`) sleeps or fails on request and logs each
/// call with how many calls of its instance were running at once, so a test can wait for a batch to be in flight.
struct ProbePipeline {
    let work: URL
    let input: URL
    let output: URL
    let plugins: URL
    let file: URL
    /// The directory the pipeline file's `checkpoint:` names (when it names one).
    var checkpoint: URL { work.appendingPathComponent("checkpoint") }

    /// - Parameters:
    ///   - lines: records in the one input file, `line 1` … `line N` (distinct, so a test sees each exactly once).
    ///   - probe: the probe's configuration (a YAML flow mapping).
    ///   - concurrent: build the probe with `SLUICE_FLAG_CONCURRENT`.
    ///   - maxRecords: the source's `max_records_per_partition` (records per batch: the one file is one partition).
    ///   - checkpoint: whether the file names a checkpoint directory.
    ///   - stages: more stages (YAML lines under `stages:`, after the probe's).
    ///   - sink: the `sinks.out` entry; by default a files sink of the probe's output under `out/`.
    init(
        lines: Int,
        probe: String = "{}",
        concurrent: Bool = false,
        maxRecords: Int = 1_000_000,
        checkpoint: Bool = true,
        stages: String = "",
        sink: String? = nil
    ) throws {
        work = try Support.makeTemporaryDirectory("sluice-probe")
        input = work.appendingPathComponent("input")
        output = work.appendingPathComponent("out")
        plugins = work.appendingPathComponent("plugins")
        file = work.appendingPathComponent("pipeline.yaml")
        for directory in [input, output, plugins] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        try PluginFileSafetyTests.compile(
            "probe_transform.c", to: plugins.appendingPathComponent("libprobe.so"), flags: concurrent ? ["-DPROBE_CONCURRENT"] : []
        )
        try (1...max(1, lines)).map { "line \($0)\n" }.joined()
            .write(to: input.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        try """
            name: probe
            batch_interval: 100ms
            \(checkpoint ? "checkpoint: \"\(self.checkpoint.path)\"" : "")
            sources:
              lines: {plugin: file-watch, max_records_per_partition: \(maxRecords), config: {directory: "\(input.path)", start: earliest}}
            stages:
              probe: {from: lines, plugin: c-probe, config: \(probe)}
            \(stages)
            sinks:
              out: \(sink ?? "{from: probe, plugin: files, config: {prefix: \"\(output.path)/part\"}}")
            """.write(to: file, atomically: true, encoding: .utf8)
    }

    /// Compiles another fixture into the plugin directory (for a sink of the test's own).
    func addPlugin(_ fixture: String, as name: String) throws {
        try PluginFileSafetyTests.compile(fixture, to: plugins.appendingPathComponent("lib\(name).so"))
    }

    /// The arguments of `sluice run` for this pipeline, with plain progress lines.
    func runArguments(_ extra: [String]) -> [String] {
        ["run", file.path, "--plugin-dir", plugins.path, "--progress", "plain"] + extra
    }

    /// Runs the pipeline to completion.
    func run(_ extra: [String], timeout: Double = 60) throws -> Support.Result {
        try Support.sluice(runArguments(extra), timeout: timeout)
    }

    /// Starts the pipeline and returns the running process.
    func start(_ extra: [String]) throws -> Support.Child {
        try Support.Child(Support.sluice, runArguments(extra))
    }

    /// The records the files sink wrote, in batch order.
    var written: [String] { Support.sinkRecords(output, prefix: "part") }

    /// `line 1` … `line n`.
    static func lines(_ n: Int) -> [String] { (1...n).map { "line \($0)" } }

    func remove() { try? FileManager.default.removeItem(at: work) }
}

extension String {
    /// The numbers captured by `pattern`'s first group in every match, in order.
    func numbers(_ pattern: Regex<(Substring, Substring)>) -> [Int] {
        matches(of: pattern).compactMap { Int($0.1) }
    }
}
