import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Restarts of a checkpointed pipeline: after changes to its stages, with files arriving while it is down.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct CheckpointPipelineTests {
    /// A pipeline over `input` with checkpoints in `checkpoint`, the given stages, a files sink on `sink`.
    static func write(_ file: URL, input: URL, checkpoint: URL, output: URL, stages: String, sink: String) throws {
        try """
            name: resumable
            batch_interval: 50ms
            checkpoint: "\(checkpoint.path)"
            sources:
              lines: {plugin: file-watch, max_records_per_partition: 4, config: {directory: "\(input.path)", glob: "*.txt", start: earliest}}
            stages:
            \(stages)
            sinks:
              out: {from: \(sink), plugin: files, config: {prefix: "\(output.path)/out", suffix: tsv, format: tsv}}
            """.write(to: file, atomically: true, encoding: .utf8)
    }

    static func lines(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".tsv") }
            .sorted { Int($0.dropFirst(4).dropLast(4))! < Int($1.dropFirst(4).dropLast(4))! }
            .flatMap { try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8).split(separator: "\n").map(String.init) }
    }

    struct Setup {
        let work: URL
        let input: URL
        let checkpoint: URL
        let output: URL
        let file: URL
    }

    static func setup() throws -> Setup {
        let work = try Support.makeTemporaryDirectory("sluice-resume")
        let setup = Setup(
            work: work,
            input: work.appendingPathComponent("input"),
            checkpoint: work.appendingPathComponent("checkpoint"),
            output: work.appendingPathComponent("out"),
            file: work.appendingPathComponent("pipeline.yaml")
        )
        for directory in [setup.input, setup.output] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        // 16 lines: four batches of four.
        try (1...16).map(line).joined(separator: "\n").appending("\n")
            .write(to: setup.input.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        return setup
    }

    /// Line `number` of a.txt: its number tells which line a word came from.
    static func line(_ number: Int) -> String { "line \(number) word\(number % 3)" }

    /// The words the `split` stage (default separators) makes of lines `numbers` of a.txt, in order.
    static func words(_ numbers: ClosedRange<Int>) -> [String] {
        numbers.flatMap { line($0).split(separator: " ").map(String.init) }
    }

    static func run(_ setup: Setup, _ extra: [String]) throws -> Support.Result {
        try Support.sluice(["run", setup.file.path, "--progress", "plain"] + extra, timeout: 60)
    }

    @Test func changingStatelessStagesResumesFromTheCommittedPositions() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        try Self.write(setup.file, input: setup.input, checkpoint: setup.checkpoint, output: setup.output,
                       stages: "  words: {from: lines, plugin: split}", sink: "words")
        let first = try Self.run(setup, ["--batches", "2"])
        #expect(first.status == 0, "\(first.stderr)")
        // Another chain of stateless stages, which keeps whole lines (a.txt has no tab): the source position (8 lines
        // read) is kept.
        try Self.write(setup.file, input: setup.input, checkpoint: setup.checkpoint, output: setup.output,
                       stages: "  whole: {from: lines, plugin: split, config: {separators: \"\\t\"}}", sink: "whole")
        let second = try Self.run(setup, ["--batches", "4"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("resuming after batch 1"))
        #expect(second.stderr.contains("batch 2 at "), "numbering goes on")
        #expect(!second.stderr.contains("batch 0 at "))
        // Lines 1-8 split into words by the first pipeline, then lines 9-16 whole by the second: each line once.
        #expect(try Self.lines(setup.output) == Self.words(1...8) + (9...16).map(Self.line))
    }

    @Test func anIncompatibleStateChangeIsRefusedUnlessResetState() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let stages = { (window: String) in
            """
              words: {from: lines, plugin: split}
              recent: {from: words, op: countByValueAndWindow, window: \(window), inverse: true}
            """
        }
        try Self.write(setup.file, input: setup.input, checkpoint: setup.checkpoint, output: setup.output, stages: stages("100ms"), sink: "recent")
        #expect(try Self.run(setup, ["--batches", "2"]).status == 0)
        try Self.write(setup.file, input: setup.input, checkpoint: setup.checkpoint, output: setup.output, stages: stages("150ms"), sink: "recent")
        let refused = try Self.run(setup, ["--batches", "4"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("stage 'recent' has saved state for countByValueAndWindow(function=count,window=2"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--reset-state"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: setup.output.path).filter { $0.hasSuffix(".tsv") }.count == 2,
                "nothing ran")
        let reset = try Self.run(setup, ["--batches", "4", "--reset-state"])
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(reset.stderr.contains("dropping its saved state"))
        #expect(reset.stderr.contains("batch 2 at ") && reset.stderr.contains("batch 3 at "), "positions were kept")
    }

    @Test func aFileThatArrivesWhileTheHostIsDownIsReadOnce() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        try Self.write(setup.file, input: setup.input, checkpoint: setup.checkpoint, output: setup.output,
                       stages: "  words: {from: lines, plugin: split}", sink: "words")
        #expect(try Self.run(setup, ["--batches", "5"]).status == 0)
        // While down: a new file, moved in atomically; and a.txt is still there.
        let staging = setup.work.appendingPathComponent("b.tmp")
        try "late arrival\n".write(to: staging, atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(at: staging, to: setup.input.appendingPathComponent("b.txt"))
        let second = try Self.run(setup, ["--batches", "8"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try Self.lines(setup.output) == Self.words(1...16) + ["late", "arrival"],
                "the old file is not read again, the new one once")
    }

    /// SIGTERM lets the batch in flight commit before exiting: nothing is left to replay, and a restart goes on
    /// after the last batch the stopped run reported.
    @Test func aGracefulStopCommitsTheBatchInFlight() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        try Self.write(setup.file, input: setup.input, checkpoint: setup.checkpoint, output: setup.output,
                       stages: "  words: {from: lines, plugin: split}", sink: "words")
        let child = try Support.Child(Support.sluice, ["run", setup.file.path, "--progress", "plain"])
        let started = child.waitFor(timeout: 30) { child.stderr.contains("batch 1 at ") }
        try #require(started, "\(child.stderr)")
        kill(child.process.processIdentifier, SIGTERM)
        let stopped = child.wait(timeout: 30)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("stopped: SIGTERM"), "\(stopped.stderr)")
        let last = try #require(stopped.stderr.matches(of: #/batch (\d+) at /#).compactMap { Int($0.1) }.max())

        let shown = try Support.sluice(["checkpoints", "show", setup.checkpoint.path])
        #expect(shown.stdout.contains("batch \(last) committed"), "\(shown.stdout)")
        #expect(!shown.stdout.contains("in flight"), "a graceful stop leaves nothing in flight:\n\(shown.stdout)")

        let resumed = try Self.run(setup, ["--batches", "\(last + 6)"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming after batch \(last)"), "\(resumed.stderr)")
        #expect(!resumed.stderr.contains("replaying"), "\(resumed.stderr)")
        #expect(try Self.lines(setup.output) == Self.words(1...16), "every line once")
    }

    @Test func checkpointsShowSetAndReset() throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        try Self.write(setup.file, input: setup.input, checkpoint: setup.checkpoint, output: setup.output,
                       stages: "  words: {from: lines, plugin: split}\n  recent: {from: words, op: countByValueAndWindow, window: 100ms}", sink: "words")
        #expect(try Self.run(setup, ["--batches", "2"]).status == 0)

        let shown = try Support.sluice(["checkpoints", "show", setup.checkpoint.path])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("pipeline resumable: batch 1 committed"))
        #expect(shown.stdout.contains("lines   0          8"), "\(shown.stdout)")
        #expect(shown.stdout.contains("recent") && shown.stdout.contains("countByValueAndWindow"))

        // Read the first four lines again: set the position back, run two more batches.
        let set = try Support.sluice(["checkpoints", "set", setup.checkpoint.path, "lines", "0", "4"])
        #expect(set.stdout.contains("lines[0]: next offset 8 -> 4"), "\(set.stdout)\(set.stderr)")
        #expect(try Self.run(setup, ["--batches", "4"]).status == 0)
        #expect(try Self.lines(setup.output) == Self.words(1...8) + Self.words(5...12), "lines 1-8, then 5-12 again")

        let state = try Support.sluice(["checkpoints", "reset", "--state", setup.checkpoint.path])
        #expect(state.stdout.contains("dropped the state of recent; positions kept at batch 3"), "\(state.stdout)")
        let reset = try Support.sluice(["checkpoints", "reset", setup.checkpoint.path])
        #expect(reset.status == 0)
        let empty = try Support.sluice(["checkpoints", "show", setup.checkpoint.path])
        #expect(empty.stdout.contains("no commits"))
        let missing = try Support.sluice(["checkpoints", "show", setup.work.appendingPathComponent("nope").path])
        #expect(missing.status == 2 && missing.stderr.contains("no such checkpoint directory"))
    }
}
