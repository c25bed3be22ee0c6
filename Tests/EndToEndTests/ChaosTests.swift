import Foundation
import Testing

/// Exactly-once across crashes: a checkpointed pipeline killed with SIGKILL again and again, and restarted each
/// time, writes for every batch exactly the counts computed here from the generated input.
///
/// The test suite runs a short form (50 batches, at least 20 kills per pipeline); `scripts/chaos.sh` runs the full
/// form (SLUICE_CHAOS_FULL=1: 200 batches, at least 100 kills).
@Suite(.serialized, .timeLimit(.minutes(10)))
struct ChaosTests {
    static let full = ProcessInfo.processInfo.environment["SLUICE_CHAOS_FULL"] == "1"
    static let batches = full ? 200 : 50
    static let kills = full ? 100 : 20
    static let linesPerBatch = 20

    /// Three input files of deterministic pseudo-random words, enough for all batches but the last few (which are
    /// empty, so the windows drain). Returns the lines in the order the source numbers them (file name order).
    @discardableResult
    static func writeInput(_ directory: URL) throws -> [String] {
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let total = (batches - 3) * linesPerBatch
        var all: [String] = []
        for file in 0..<3 {
            var lines: [String] = []
            for _ in 0..<(total / 3) {
                lines.append((0..<(1 + Int(next() % 8))).map { _ in "w\(next() % 40)" }.joined(separator: " "))
            }
            try lines.map { $0 + "\n" }.joined().write(to: directory.appendingPathComponent("part-\(file).txt"), atomically: true, encoding: .utf8)
            all += lines
        }
        return all
    }

    /// What each sink must hold for batches `0..<count`, computed from the input alone: every batch takes the next
    /// `linesPerBatch` lines (all input is present at start); `split` cuts them at spaces.
    struct Expected {
        /// The words of each batch.
        let words: [[String]]

        init(lines: [String], batches count: Int) {
            words = (0..<count).map { batch in
                let first = min(lines.count, batch * ChaosTests.linesPerBatch)
                return lines[first..<min(lines.count, first + ChaosTests.linesPerBatch)].flatMap { $0.split(separator: " ").map(String.init) }
            }
        }

        static func count(_ words: some Sequence<String>) -> [String: Int] { Dictionary(words.map { ($0, 1) }, uniquingKeysWith: +) }

        /// `countByValue`: the counts of each batch.
        var counts: [[String: Int]] { words.map(Self.count) }
        /// `countByValueAndWindow` over 3 batches (150 ms), with `inverse`: words that left the window are dropped.
        var recent: [[String: Int]] { words.indices.map { Self.count(words[max(0, $0 - 2)...$0].joined()) } }
        /// `updateStateByKey` with `sum` over `(word, 1)`: the running totals.
        var totals: [[String: Int]] {
            var running: [String: Int] = [:]
            return words.map { batch in
                running.merge(Self.count(batch), uniquingKeysWith: +)
                return running
            }
        }

        subscript(sink: String) -> [[String: Int]] {
            switch sink {
            case "counts": counts
            case "recent": recent
            case "totals": totals
            default: []
            }
        }

        /// Every sink's files in `output` hold exactly the expected counts, one file per batch.
        func check(_ output: URL, sinks: [String], after what: String) throws {
            for sink in sinks {
                let got = try WindowedPipelineTests.outputs(output, prefix: sink)
                let expected = self[sink]
                #expect(got.count == expected.count, "\(sink): \(got.count) files for \(expected.count) batches after \(what)")
                let wrong = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                #expect(wrong == nil, "\(sink): batch \(wrong ?? -1) differs from the independent count after \(what)")
            }
        }
    }

    /// The concatenated output of sink `prefix`, batch by batch (files ordered by batch time), and how many files
    /// (the Event Hubs chaos test compares two runs with it).
    static func output(_ directory: URL, prefix: String) throws -> (bytes: Data, files: Int) {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix(prefix + "-") && $0.hasSuffix(".tsv") }
            .sorted { Int($0.dropFirst(prefix.count + 1).dropLast(4))! < Int($1.dropFirst(prefix.count + 1).dropLast(4))! }
        var bytes = Data()
        for name in names {
            bytes.append(try Data(contentsOf: directory.appendingPathComponent(name)))
            bytes.append(contentsOf: Array("--\n".utf8))
        }
        return (bytes, names.count)
    }

    static func pipeline(stages: String, sinks: [String], input: URL, checkpoint: URL, output: URL) -> String {
        """
        name: chaos
        batch_interval: 50ms
        checkpoint: "\(checkpoint.path)"
        sources:
          lines:
            plugin: file-watch
            max_records_per_partition: \(linesPerBatch)
            config: {directory: "\(input.path)", glob: "*.txt", start: earliest}
        stages:
          words: {from: lines, plugin: split}
          pairs: {from: lines, plugin: split, config: {output: pairs}}
        \(stages)
        sinks:
        \(sinks.map { "  \($0): {from: \($0), plugin: files, config: {prefix: \"\(output.path)/\($0)\", suffix: tsv, format: tsv}}" }.joined(separator: "\n"))
        """
    }

    /// The highest batch a run reported finished (`batch N at ...` progress lines), or -1.
    static func lastReportedBatch(_ stderr: String) -> Int {
        stderr.matches(of: #/(?m)^batch (\d+) at /#).compactMap { Int($0.1) }.max() ?? -1
    }

    /// Runs `sluice arguments` again and again until a run finishes by itself, killing each with SIGKILL 0-15 ms
    /// (under one batch interval) after it reports a batch that no earlier run finished, so every kill lands in a
    /// batch after start-up and recovery, whatever the machine's load (a restart runs the batches it is behind on back
    /// to back, several in 30 ms once batches got faster, and the full runs then fell short of their kills); after `stopKillingAfter` kills the next run is
    /// left alone. Returns the kills that SIGKILL really ended; a run that fails otherwise fails the test.
    static func runUnderKills(_ arguments: [String], batches: Int, stopKillingAfter: Int = .max) throws -> Int {
        var killed = 0
        var reached = -1
        var random = SystemRandomNumberGenerator()
        while true {
            try #require(killed <= batches, "\(killed) kills and the run has not finished")
            let child = try Support.Child(Support.sluice, arguments)
            let progressed = child.waitFor(timeout: 60) { !child.process.isRunning || lastReportedBatch(child.stderr) > reached }
            if progressed && child.process.isRunning && killed < stopKillingAfter {
                _ = child.waitFor(timeout: Double.random(in: 0...0.015, using: &random)) { !child.process.isRunning }
                kill(child.process.processIdentifier, SIGKILL)
            }
            let result = child.wait(timeout: 60)
            try #require(progressed, "no new batch within 60 s:\n\(result.stderr)")
            reached = max(reached, lastReportedBatch(result.stderr))
            if child.process.terminationReason == .uncaughtSignal && result.status == SIGKILL {
                killed += 1
                continue
            }
            try #require(result.status == 0, "a restart failed (status \(result.status)):\n\(result.stderr)")
            return killed
        }
    }

    /// No name holding `.tmp` is left anywhere under `directory` (output and checkpoint): the leftovers of writes a
    /// kill tore are removed by the next start (the files sink) or prune (the checkpoint store).
    static func expectNoTemporaryFiles(under directory: URL, after what: String) {
        let walker = FileManager.default.enumerator(atPath: directory.path)
        let leftovers = (walker?.allObjects as? [String] ?? []).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty, "temporary files remain after \(what): \(leftovers)")
    }

    /// Runs `stages` under SIGKILLs (`runUnderKills`) until it has committed all its batches, then compares every
    /// sink's output with the independent count.
    func chaos(stages: String, sinks: [String]) throws {
        let work = try Support.makeTemporaryDirectory("sluice-chaos")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = work.appendingPathComponent("input")
        let out = work.appendingPathComponent("out")
        for directory in [input, out] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        let expected = Expected(lines: try Self.writeInput(input), batches: Self.batches)
        let file = work.appendingPathComponent("chaos.yaml")
        try Self.pipeline(stages: stages, sinks: sinks, input: input, checkpoint: work.appendingPathComponent("ck"), output: out)
            .write(to: file, atomically: true, encoding: .utf8)
        let arguments = ["run", file.path, "--batches", "\(Self.batches)", "--progress", "plain"]

        let killed = try Self.runUnderKills(arguments, batches: Self.batches)
        #expect(killed >= Self.kills, "only \(killed) kills before the run finished")
        #expect(expected.words.joined().count > Self.batches * Self.linesPerBatch, "the oracle counts real input")
        try expected.check(out, sinks: sinks, after: "\(killed) kills")
        Self.expectNoTemporaryFiles(under: work, after: "\(killed) kills")
    }

    @Test func wordCountIsExactlyOnceAcrossKills() throws {
        try chaos(stages: "  counts: {from: words, op: countByValue}", sinks: ["counts"])
    }

    @Test func windowsAndStateAreExactlyOnceAcrossKills() throws {
        try chaos(
            stages: """
                  recent: {from: words, op: countByValueAndWindow, window: 150ms, inverse: true}
                  totals: {from: pairs, op: updateStateByKey, function: sum}
                """,
            sinks: ["recent", "totals"]
        )
    }

    /// A pipeline with two sinks (`counts`, `totals`) over the generated input, and the arguments that run it for 12
    /// batches.
    struct CrashSetup {
        let work: URL
        let output: URL
        let checkpoint: URL
        let expected: Expected
        func arguments(batches: Int = 12) -> [String] {
            ["run", work.appendingPathComponent("crash.yaml").path, "--batches", "\(batches)", "--progress", "plain"]
        }

        /// Each sink holds the independent count of each of the 12 batches, once, and no temporary file is left.
        func expectExactOutput(_ what: String) throws {
            try expected.check(output, sinks: ["counts", "totals"], after: what)
            ChaosTests.expectNoTemporaryFiles(under: work, after: what)
        }
    }

    static func crashSetup() throws -> CrashSetup {
        let work = try Support.makeTemporaryDirectory("sluice-crash")
        let input = work.appendingPathComponent("input")
        let output = work.appendingPathComponent("out")
        for directory in [input, output] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        let lines = try Self.writeInput(input)
        let stages = """
              counts: {from: words, op: countByValue}
              totals: {from: pairs, op: updateStateByKey, function: sum}
            """
        let checkpoint = work.appendingPathComponent("ck")
        try Self.pipeline(stages: stages, sinks: ["counts", "totals"], input: input, checkpoint: checkpoint, output: output)
            .write(to: work.appendingPathComponent("crash.yaml"), atomically: true, encoding: .utf8)
        return CrashSetup(work: work, output: output, checkpoint: checkpoint, expected: Expected(lines: lines, batches: 12))
    }

    static func expectKilled(_ result: Support.Result, _ what: String) {
        #expect(result.status == 9 || result.status == 137 || result.status == -9, "killed \(what) (status \(result.status))\n\(result.stderr)")
    }

    /// A crash at each narrow point of a batch — plan recorded but nothing read, sinks committed but the checkpoint
    /// not, checkpoint committed but the sources not told — then a restart: every batch's output is exact, once.
    @Test(arguments: ["after-plan", "after-sinks", "after-commit"])
    func aCrashAtEachPointOfABatchIsRecoveredExactly(point: String) throws {
        let setup = try Self.crashSetup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let crashed = try Support.sluice(setup.arguments(), environment: ["SLUICE_TEST_CRASH": "\(point):5"], timeout: 60)
        Self.expectKilled(crashed, "at \(point) of batch 5")
        let resumed = try Support.sluice(setup.arguments(), timeout: 60)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        if point != "after-commit" {
            #expect(resumed.stderr.contains("replaying batch 5"), "\(resumed.stderr)")
        }
        try setup.expectExactOutput("a crash \(point) batch 5")
    }

    /// Flips one byte near the end of a checkpoint file (inside its JSON body: the checksum no longer matches).
    static func garble(_ file: URL) throws {
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count - 4] ^= 0x08
        try bytes.write(to: file)
    }

    /// Damage on top of a crash (issue 11): killed after the sinks wrote batch B, then the newest commit (B − 1) and
    /// `inflight.ckpt` (B) are garbled. The start falls back to commit B − 2 and runs B − 1 and B again under the
    /// times of their first attempts, so the `files` sink replaces what they wrote: nothing is counted twice and the
    /// output of every batch is exact. `acrossRestarts`: the commit fallen back to was written by an earlier run
    /// than the crashed one, whose batch clock started later (it must have been recorded in the older commit).
    @Test(arguments: [false, true])
    func aDamagedNewestCommitAndInflightRecordAfterACrashCountNothingTwice(acrossRestarts: Bool) throws {
        let setup = try Self.crashSetup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let crashAt = acrossRestarts ? 4 : 5
        if acrossRestarts {
            let first = try Support.sluice(setup.arguments(batches: 4), timeout: 60)
            #expect(first.status == 0, "\(first.stderr)")
            usleep(300_000)  // the next run's clock starts well after this one's
        }
        let crashed = try Support.sluice(setup.arguments(), environment: ["SLUICE_TEST_CRASH": "after-sinks:\(crashAt)"], timeout: 60)
        Self.expectKilled(crashed, "after the sinks of batch \(crashAt)")
        let newest = String(format: "commit-%012d.ckpt", crashAt - 1)
        try Self.garble(setup.checkpoint.appendingPathComponent(newest))
        try Self.garble(setup.checkpoint.appendingPathComponent("inflight.ckpt"))

        let shown = try Support.sluice(["checkpoints", "show", setup.checkpoint.path])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("batch \(crashAt - 2) committed"), "\(shown.stdout)")
        #expect(shown.stdout.contains("\(newest): damaged"), "\(shown.stdout)")
        #expect(shown.stdout.contains("in flight: damaged: ") && shown.stdout.contains("inflight.ckpt: checksum mismatch"), "\(shown.stdout)")

        let resumed = try Support.sluice(setup.arguments(), timeout: 60)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("skipping a damaged checkpoint"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("the record of the batch in flight is damaged"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("batches \(crashAt - 1)...\(crashAt) may have run before a record was lost"), "\(resumed.stderr)")
        try setup.expectExactOutput("a crash after the sinks of batch \(crashAt) and damaged records")
    }
}
