import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How `sluice run` uses its checkpoint directory (docs/fault-tolerance.md): which directory the command line
/// chooses, a write that fails and is retried, leftovers of torn writes, and a committed position a source cannot
/// serve.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct CheckpointRunTests {
    static let commit0 = "commit-000000000000.ckpt"

    @Test func checkpointDirOverridesTheFilesDirectory() throws {
        let pipeline = try ProbePipeline(lines: 6, maxRecords: 3)
        defer { pipeline.remove() }
        let other = pipeline.work.appendingPathComponent("other")
        let first = try pipeline.run(["--checkpoint-dir", other.path, "--batches", "1"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(FileManager.default.fileExists(atPath: other.appendingPathComponent(Self.commit0).path))
        #expect(!FileManager.default.fileExists(atPath: pipeline.checkpoint.path), "the file's directory was used")
        let second = try pipeline.run(["--checkpoint-dir", other.path, "--batches", "2"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("resuming after batch 0 from \(other.path)"), "\(second.stderr)")
        #expect(pipeline.written == ProbePipeline.lines(6), "lines 1-3, then 4-6 after the restart")
    }

    @Test func noCheckpointIgnoresTheFilesDirectory() throws {
        let pipeline = try ProbePipeline(lines: 6, maxRecords: 3)
        defer { pipeline.remove() }
        for _ in 0..<2 {
            let result = try pipeline.run(["--no-checkpoint", "--batches", "1"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(!result.stderr.contains("resuming"), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: pipeline.checkpoint.path), "--no-checkpoint wrote a checkpoint")
        #expect(pipeline.written == ProbePipeline.lines(3) + ProbePipeline.lines(3), "each run starts from the beginning")
    }

    /// A pipeline of 40 lines, 2 a batch, with a stateful stage (so every commit writes a state file), and the
    /// running process after its batch 1 committed; then `state/` is replaced by a file, so the next commit fails
    /// (ENOTDIR, as root too, where permissions would not stop a write) until the directory is put back.
    static func startWithStateBlocked() throws -> (ProbePipeline, Support.Child, blocked: UInt64) {
        let pipeline = try ProbePipeline(
            lines: 40, maxRecords: 2, stages: "  recent: {from: probe, op: countByValueAndWindow, window: 200ms}"
        )
        let child = try pipeline.start([])
        _ = child.waitFor(timeout: 30) { child.stderr.contains("batch 1 at ") || !child.process.isRunning }
        try #require(child.stderr.contains("batch 1 at "), "\(child.stderr)")
        let state = pipeline.checkpoint.appendingPathComponent("state")
        try FileManager.default.moveItem(at: state, to: pipeline.work.appendingPathComponent("state.moved"))
        try Data().write(to: state)
        // Two failures of one commit, 100 ms apart and then 200 ms: the back-off doubles.
        _ = child.waitFor(timeout: 30) { child.stderr.contains("; retrying in 200 ms") || !child.process.isRunning }
        try #require(child.stderr.contains("; retrying in 200 ms"), "\(child.stderr)")
        let failures = child.stderr.split(separator: "\n").filter { $0.contains("sluice: error: committing batch ") }
        let batch = try #require(String(failures[0]).numbers(#/committing batch (\d+):/#).first)
        #expect(failures.allSatisfy { $0.contains("committing batch \(batch): cannot open directory ") && $0.contains("Not a directory") }, "\(failures)")
        #expect(failures.first?.hasSuffix("retrying in 100 ms") == true, "\(failures)")
        return (pipeline, child, UInt64(batch))
    }

    static func unblockState(_ pipeline: ProbePipeline) throws {
        let state = pipeline.checkpoint.appendingPathComponent("state")
        try FileManager.default.removeItem(at: state)
        try FileManager.default.moveItem(at: pipeline.work.appendingPathComponent("state.moved"), to: state)
    }

    @Test func aFailedCheckpointWriteIsRetriedWithBackOffAndThePipelineGoesOn() throws {
        let (pipeline, child, blocked) = try Self.startWithStateBlocked()
        defer { pipeline.remove() }
        #expect(!child.stderr.contains("batch \(blocked) at "), "the batch advanced without its commit:\n\(child.stderr)")
        try Self.unblockState(pipeline)
        _ = child.waitFor(timeout: 30) { child.stderr.contains("batch \(blocked + 2) at ") || !child.process.isRunning }
        #expect(child.stderr.contains("batch \(blocked + 2) at "), "\(child.stderr)")
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        let last = try #require(result.stderr.numbers(#/batch (\d+) at /#).max())
        let shown = try Support.sluice(["checkpoints", "show", pipeline.checkpoint.path])
        #expect(shown.stdout.contains("batch \(last) committed"), "\(shown.stdout)\(shown.stderr)")
        #expect(pipeline.written == Array(ProbePipeline.lines(40).prefix(2 * (last + 1))), "every line once, in order")
    }

    @Test func ctrlCDuringTheRetriesExits1WithoutThatCommitAndTheNextStartReplaysIt() throws {
        let (pipeline, child, blocked) = try Self.startWithStateBlocked()
        defer { pipeline.remove() }
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("sluice: error: batch \(blocked) failed: "), "\(result.stderr)")
        try Self.unblockState(pipeline)
        let shown = try Support.sluice(["checkpoints", "show", pipeline.checkpoint.path])
        #expect(shown.stdout.contains("batch \(blocked - 1) committed"), "\(shown.stdout)\(shown.stderr)")
        #expect(shown.stdout.contains("in flight: batch \(blocked), replayed on the next start"), "\(shown.stdout)")

        let resumed = try pipeline.run(["--batches", "\(blocked + 2)"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("replaying batch \(blocked), planned before the last stop"), "\(resumed.stderr)")
        // The sink had written the blocked batch; the replay replaces that file (same batch time): no line twice.
        #expect(pipeline.written == Array(ProbePipeline.lines(40).prefix(2 * Int(blocked + 2))))
    }

    @Test func leftoversOfTornWritesAreRemovedByTheNextPrune() throws {
        let pipeline = try ProbePipeline(
            lines: 6, maxRecords: 2, stages: "  recent: {from: probe, op: countByValueAndWindow, window: 200ms}"
        )
        defer { pipeline.remove() }
        #expect(try pipeline.run(["--batches", "1"]).status == 0)
        // What a process killed in the middle of writeAtomically leaves behind (another pid than the next run's).
        let leftovers = [
            "commit-000000000001.ckpt.tmp-999999999", "inflight.ckpt.tmp-999999998", "state/recent@1.state.tmp-999999999",
        ].map { pipeline.checkpoint.appendingPathComponent($0) }
        for leftover in leftovers { try "torn".write(to: leftover, atomically: false, encoding: .utf8) }
        let result = try pipeline.run(["--batches", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        for leftover in leftovers {
            #expect(!FileManager.default.fileExists(atPath: leftover.path), "\(leftover.lastPathComponent) is still there")
        }
        #expect(FileManager.default.fileExists(atPath: pipeline.checkpoint.appendingPathComponent("commit-000000000001.ckpt").path))
    }

    @Test func aCommittedPositionPastWhatTheSourceHoldsIsReportedAtStart() throws {
        let pipeline = try ProbePipeline(lines: 6, maxRecords: 2)
        defer { pipeline.remove() }
        let first = try pipeline.run(["--batches", "1"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(!first.stderr.contains("warning"), "\(first.stderr)")
        let set = try Support.sluice(["checkpoints", "set", pipeline.checkpoint.path, "lines", "0", "100"])
        #expect(set.status == 0, "\(set.stderr)")
        let result = try pipeline.run(["--batches", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains(
            "sluice: warning: source 'lines' partition 0: committed position 100 is past what the source holds (up to 6)"
        ), "\(result.stderr)")
        #expect(pipeline.written == ProbePipeline.lines(2), "nothing is read below the position")
    }
}
