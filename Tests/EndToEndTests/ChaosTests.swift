import Foundation
import Testing

/// Exactly-once across crashes: a checkpointed pipeline killed with SIGKILL at random moments, and restarted each
/// time, writes output byte-identical to an uninterrupted run.
///
/// The test suite runs a short form (50 batches, at least 20 kills per pipeline); `scripts/chaos.sh` runs the full
/// form (SLUICE_CHAOS_FULL=1: 200 batches, at least 100 kills).
@Suite(.serialized)
struct ChaosTests {
    static let full = ProcessInfo.processInfo.environment["SLUICE_CHAOS_FULL"] == "1"
    static let batches = full ? 200 : 50
    static let kills = full ? 100 : 20
    static let linesPerBatch = 20

    /// Three input files of deterministic pseudo-random words, enough for all batches but the last few (which are
    /// empty, so the windows drain).
    static func writeInput(_ directory: URL) throws {
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let total = (batches - 3) * linesPerBatch
        for file in 0..<3 {
            var text = ""
            for _ in 0..<(total / 3) {
                text += (0..<(1 + Int(next() % 8))).map { _ in "w\(next() % 40)" }.joined(separator: " ") + "\n"
            }
            try text.write(to: directory.appendingPathComponent("part-\(file).txt"), atomically: true, encoding: .utf8)
        }
    }

    /// The concatenated output of sink `prefix`, batch by batch (files ordered by batch time), and how many files.
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

    /// Runs `stages` once without interruption and once under SIGKILLs; compares every sink's output.
    func chaos(stages: String, sinks: [String]) throws {
        let work = try Support.makeTemporaryDirectory("sluice-chaos")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = work.appendingPathComponent("input")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try Self.writeInput(input)
        var outputs: [URL] = []
        for run in ["calm", "chaos"] {
            let out = work.appendingPathComponent("out-\(run)")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let file = work.appendingPathComponent("\(run).yaml")
            try Self.pipeline(stages: stages, sinks: sinks, input: input, checkpoint: work.appendingPathComponent("ck-\(run)"), output: out)
                .write(to: file, atomically: true, encoding: .utf8)
            outputs.append(out)
        }
        let arguments = { (run: String) in ["run", work.appendingPathComponent("\(run).yaml").path, "--batches", "\(Self.batches)", "--progress", "none"] }

        let calm = try Support.sluice(arguments("calm"), timeout: 120)
        try #require(calm.status == 0, "the uninterrupted run failed:\n\(calm.stderr)")

        var killed = 0
        var attempts = 0
        var random = SystemRandomNumberGenerator()
        var finished = false
        while !finished {
            attempts += 1
            try #require(attempts < Self.kills * 20, "no progress after \(attempts) starts")
            let child = try Support.Child(Support.sluice, arguments("chaos"))
            // Mostly short lives, so that kills land in every phase of a batch; now and then a longer one.
            let life = attempts % 10 == 0 ? 0.5 : Double.random(in: 0.02...0.12, using: &random)
            if child.waitFor(timeout: life, { !child.process.isRunning }) {
                let result = child.wait(timeout: 1)
                try #require(result.status == 0, "a restart failed (status \(result.status)):\n\(result.stderr)")
                finished = true
            } else {
                kill(child.process.processIdentifier, SIGKILL)
                child.process.waitUntilExit()
                killed += 1
            }
        }
        #expect(killed >= Self.kills, "only \(killed) kills before the run finished")

        for sink in sinks {
            let expected = try Self.output(outputs[0], prefix: sink)
            let got = try Self.output(outputs[1], prefix: sink)
            #expect(expected.files == Self.batches, "\(sink): \(expected.files) files")
            #expect(got.files == expected.files, "\(sink): \(got.files) files after \(killed) kills, \(expected.files) without")
            #expect(got.bytes == expected.bytes, "\(sink): output differs after \(killed) kills")
        }
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

    /// A calm and a crash pipeline over the same input, two sinks each (`counts`, `totals`), and the arguments that
    /// run one of them for 12 batches.
    struct CrashSetup {
        let work: URL
        let outputs: [URL]
        let checkpoint: URL
        func arguments(_ run: String, batches: Int = 12) -> [String] {
            ["run", work.appendingPathComponent("\(run).yaml").path, "--batches", "\(batches)", "--progress", "plain"]
        }

        /// The crash run's output equals the calm run's, sink by sink: as many files, the same bytes.
        func expectSameOutput(_ what: String) throws {
            for sink in ["counts", "totals"] {
                let expected = try ChaosTests.output(outputs[0], prefix: sink)
                let got = try ChaosTests.output(outputs[1], prefix: sink)
                #expect(got.files == 12 && expected.files == 12, "\(sink): \(got.files) files, \(expected.files) expected")
                #expect(got.bytes == expected.bytes, "\(sink): output differs after \(what)")
            }
        }
    }

    static func crashSetup() throws -> CrashSetup {
        let work = try Support.makeTemporaryDirectory("sluice-crash")
        let input = work.appendingPathComponent("input")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try Self.writeInput(input)
        let stages = """
              counts: {from: words, op: countByValue}
              totals: {from: pairs, op: updateStateByKey, function: sum}
            """
        var outputs: [URL] = []
        for run in ["calm", "crash"] {
            let out = work.appendingPathComponent("out-\(run)")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try Self.pipeline(stages: stages, sinks: ["counts", "totals"], input: input, checkpoint: work.appendingPathComponent("ck-\(run)"), output: out)
                .write(to: work.appendingPathComponent("\(run).yaml"), atomically: true, encoding: .utf8)
            outputs.append(out)
        }
        let setup = CrashSetup(work: work, outputs: outputs, checkpoint: work.appendingPathComponent("ck-crash"))
        let calm = try Support.sluice(setup.arguments("calm"), timeout: 60)
        try #require(calm.status == 0, "\(calm.stderr)")
        return setup
    }

    static func expectKilled(_ result: Support.Result, _ what: String) {
        #expect(result.status == 9 || result.status == 137 || result.status == -9, "killed \(what) (status \(result.status))\n\(result.stderr)")
    }

    /// A crash at each narrow point of a batch — plan recorded but nothing read, sinks committed but the checkpoint
    /// not, checkpoint committed but the sources not told — then a restart: the output equals an uninterrupted run.
    @Test(arguments: ["after-plan", "after-sinks", "after-commit"])
    func aCrashAtEachPointOfABatchIsRecoveredExactly(point: String) throws {
        let setup = try Self.crashSetup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let crashed = try Support.sluice(setup.arguments("crash"), environment: ["SLUICE_TEST_CRASH": "\(point):5"], timeout: 60)
        Self.expectKilled(crashed, "at \(point) of batch 5")
        let resumed = try Support.sluice(setup.arguments("crash"), timeout: 60)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        if point != "after-commit" {
            #expect(resumed.stderr.contains("replaying batch 5"), "\(resumed.stderr)")
        }
        try setup.expectSameOutput("a crash \(point) batch 5")
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
    /// output equals an uninterrupted run. `acrossRestarts`: the commit fallen back to was written by an earlier run
    /// than the crashed one, whose batch clock started later (it must have been recorded in the older commit).
    @Test(arguments: [false, true])
    func aDamagedNewestCommitAndInflightRecordAfterACrashCountNothingTwice(acrossRestarts: Bool) throws {
        let setup = try Self.crashSetup()
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let crashAt = acrossRestarts ? 4 : 5
        if acrossRestarts {
            let first = try Support.sluice(setup.arguments("crash", batches: 4), timeout: 60)
            #expect(first.status == 0, "\(first.stderr)")
            usleep(300_000)  // the next run's clock starts well after this one's
        }
        let crashed = try Support.sluice(setup.arguments("crash"), environment: ["SLUICE_TEST_CRASH": "after-sinks:\(crashAt)"], timeout: 60)
        Self.expectKilled(crashed, "after the sinks of batch \(crashAt)")
        let newest = String(format: "commit-%012d.ckpt", crashAt - 1)
        try Self.garble(setup.checkpoint.appendingPathComponent(newest))
        try Self.garble(setup.checkpoint.appendingPathComponent("inflight.ckpt"))

        let shown = try Support.sluice(["checkpoints", "show", setup.checkpoint.path])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("batch \(crashAt - 2) committed"), "\(shown.stdout)")
        #expect(shown.stdout.contains("\(newest): damaged"), "\(shown.stdout)")
        #expect(shown.stdout.contains("in flight: damaged: ") && shown.stdout.contains("inflight.ckpt: checksum mismatch"), "\(shown.stdout)")

        let resumed = try Support.sluice(setup.arguments("crash"), timeout: 60)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("skipping a damaged checkpoint"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("the record of the batch in flight is damaged"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("batches \(crashAt - 1)...\(crashAt) may have run before a record was lost"), "\(resumed.stderr)")
        try setup.expectSameOutput("a crash after the sinks of batch \(crashAt) and damaged records")
        let hidden = try FileManager.default.contentsOfDirectory(atPath: setup.outputs[1].path).filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "no temporary file is left: \(hidden)")
    }
}
