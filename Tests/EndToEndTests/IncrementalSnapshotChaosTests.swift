import Foundation
import Testing

/// Exactly-once across crashes with incremental state snapshots: stateful pipelines whose commits save deltas
/// (the keys changed since the commit before) are killed with SIGKILL again and again, or at the narrow points
/// around a delta, and restarted; every sink's output is byte for byte that of a run never interrupted.
///
/// The state is large next to what a batch touches (a few dozen of up to 3,000 keys), so most commits save a delta
/// and restarts restore chains of them: updateStateByKey and mapWithState built in, and updateStateByKey with a C
/// state updater (whose deltas also carry the keys it removes).
@Suite(.serialized, .timeLimit(.minutes(10)))
struct IncrementalSnapshotChaosTests {
    static let batches = ChaosTests.full ? 200 : 40
    static let kills = ChaosTests.full ? 100 : 15
    static let sinks = ["totals", "sessions", "recent"]

    /// Three files of 1-3 words each a key of 3,000, enough lines for all batches but the last three.
    static func writeInput(_ directory: URL, batches: Int) throws {
        var state: UInt64 = 0xD17A
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let perFile = (batches - 3) * ChaosTests.linesPerBatch / 3
        for file in 0..<3 {
            let lines = (0..<perFile).map { _ in (0...(next() % 3)).map { _ in "k\(next() % 3000)" }.joined(separator: " ") }
            try lines.map { $0 + "\n" }.joined().write(to: directory.appendingPathComponent("part-\(file).txt"), atomically: true, encoding: .utf8)
        }
    }

    /// A work directory holding the plugin, the input and two pipeline files with the same stages: `run.yaml`
    /// (checkpoint `ck`, output `out`) and `reference.yaml` (checkpoint `ck-reference`, output `reference`).
    struct Setup {
        let work: URL
        var checkpoint: URL { work.appendingPathComponent("ck") }
        var output: URL { work.appendingPathComponent("out") }
        var plugins: URL { work.appendingPathComponent("plugins") }

        init(batches: Int) throws {
            work = try Support.makeTemporaryDirectory("sluice-delta-chaos")
            let input = work.appendingPathComponent("input")
            for name in ["input", "out", "reference", "plugins"] {
                try FileManager.default.createDirectory(at: work.appendingPathComponent(name), withIntermediateDirectories: true)
            }
            try CFixtures.sharedObject("c_recent_state.c", to: work.appendingPathComponent("plugins/librecent.so"))
            try IncrementalSnapshotChaosTests.writeInput(input, batches: batches)
            let stages = """
                  totals: {from: pairs, op: updateStateByKey, function: sum}
                  sessions: {from: pairs, op: mapWithState, function: sum, timeout: 150ms}
                  recent: {from: pairs, op: updateStateByKey, function: c-recent, partitions: 2}
                """
            for (file, checkpoint, output) in [("run", "ck", "out"), ("reference", "ck-reference", "reference")] {
                try ChaosTests.pipeline(
                    stages: stages, sinks: IncrementalSnapshotChaosTests.sinks, input: input,
                    checkpoint: work.appendingPathComponent(checkpoint), output: work.appendingPathComponent(output)
                ).write(to: work.appendingPathComponent("\(file).yaml"), atomically: true, encoding: .utf8)
            }
        }

        func arguments(_ file: String = "run", batches: Int) -> [String] {
            ["run", work.appendingPathComponent("\(file).yaml").path, "--batches", "\(batches)", "--progress", "plain", "--plugin-dir", plugins.path]
        }

        /// Runs the reference pipeline without interruption, then compares every sink's output with it, byte for byte.
        func expectOutputAsUninterrupted(batches: Int, after what: String) throws {
            let reference = try Support.sluice(arguments("reference", batches: batches), timeout: 120)
            try #require(reference.status == 0, "\(reference.stderr)")
            for sink in IncrementalSnapshotChaosTests.sinks {
                let expected = try ChaosTests.output(work.appendingPathComponent("reference"), prefix: sink)
                let got = try ChaosTests.output(output, prefix: sink)
                #expect(expected.files == batches, "\(sink): the reference wrote \(expected.files) files")
                #expect(got.files == expected.files, "\(sink): \(got.files) files for \(expected.files) batches after \(what)")
                #expect(got.bytes == expected.bytes, "\(sink): the output differs from an uninterrupted run's after \(what)")
            }
            ChaosTests.expectNoTemporaryFiles(under: work, after: what)
        }

        /// The text of the newest commit record.
        func newestCommit() throws -> (name: String, text: String) {
            let name = try #require(try FileManager.default.contentsOfDirectory(atPath: checkpoint.path).filter { $0.hasPrefix("commit-") }.max())
            return (name, try String(contentsOf: checkpoint.appendingPathComponent(name), encoding: .utf8))
        }
    }

    @Test func statefulPipelinesWithDeltasAreExactlyOnceAcrossKills() throws {
        let setup = try Setup(batches: Self.batches)
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let killed = try ChaosTests.runUnderKills(setup.arguments(batches: Self.batches), batches: Self.batches)
        #expect(killed >= Self.kills, "only \(killed) kills before the run finished")
        let deltas = try FileManager.default.contentsOfDirectory(atPath: setup.checkpoint.appendingPathComponent("state").path)
            .filter { $0.hasSuffix(".delta") }
        #expect(!deltas.isEmpty, "the kept commits save deltas")
        try setup.expectOutputAsUninterrupted(batches: Self.batches, after: "\(killed) kills")
    }

    /// Killed once the sinks have written batch 9 (its state not yet saved): the restart restores the chain of
    /// commit 8 — a whole snapshot and the deltas after it — and runs batch 9 again.
    @Test func aRestartRestoresAChainOfDeltas() throws {
        let setup = try Setup(batches: 16)
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let crashed = try Support.sluice(setup.arguments(batches: 16), environment: ["SLUICE_TEST_CRASH": "after-sinks:9"], timeout: 60)
        ChaosTests.expectKilled(crashed, "after the sinks of batch 9")
        let newest = try setup.newestCommit()
        #expect(newest.name == "commit-000000000008.ckpt")
        try #require(newest.text.contains(#""deltas""#) && newest.text.contains("totals@8.delta"), "commit 8 restores through deltas:\n\(newest.text)")
        let resumed = try Support.sluice(setup.arguments(batches: 16), timeout: 60)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("replaying batch 9"), "\(resumed.stderr)")
        try setup.expectOutputAsUninterrupted(batches: 16, after: "a restart through a chain of deltas")
    }

    /// `state_snapshots: {incremental: false}` in the pipeline file: every commit saves whole state, as before deltas.
    @Test func incrementalSnapshotsCanBeTurnedOff() throws {
        let setup = try Setup(batches: 8)
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let file = setup.work.appendingPathComponent("run.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        try text.replacingOccurrences(of: "sources:\n", with: "state_snapshots: {incremental: false}\nsources:\n")
            .write(to: file, atomically: true, encoding: .utf8)
        let run = try Support.sluice(setup.arguments(batches: 8), timeout: 60)
        #expect(run.status == 0, "\(run.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: setup.checkpoint.appendingPathComponent("state").path)
        #expect(files.contains("totals@7.state") && !files.contains { $0.hasSuffix(".delta") }, "\(files)")
        #expect(!(try setup.newestCommit().text.contains(#""deltas""#)))
    }

    /// What a crash between writing a delta and writing the commit record that names it leaves: the delta of batch
    /// 8 on disk, no commit 8. The restart loads commit 7, runs batch 8 again (a new delta over commit 7,
    /// written over the stray one), and the output is exact.
    @Test func aDeltaWrittenWithoutItsCommitIsNeverApplied() throws {
        let setup = try Setup(batches: 16)
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let crashed = try Support.sluice(setup.arguments(batches: 16), environment: ["SLUICE_TEST_CRASH": "after-commit:8"], timeout: 60)
        ChaosTests.expectKilled(crashed, "after the commit of batch 8")
        let stray = setup.checkpoint.appendingPathComponent("state/totals@8.delta")
        try #require(FileManager.default.fileExists(atPath: stray.path), "batch 8 saved a delta")
        try FileManager.default.removeItem(at: setup.checkpoint.appendingPathComponent("commit-000000000008.ckpt"))

        let resumed = try Support.sluice(setup.arguments(batches: 16), timeout: 60)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming after batch 7"), "\(resumed.stderr)")
        try setup.expectOutputAsUninterrupted(batches: 16, after: "a delta without its commit")
    }
}
