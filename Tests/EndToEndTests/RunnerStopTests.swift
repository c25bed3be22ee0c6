import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How `sluice run` stops on signals while a batch is in flight (docs/pipeline.md "Running", fault-tolerance.md
/// "Graceful stop"): the first Ctrl-C lets the batch finish and exits 0; a second exits at once with 130; a graceful
/// stop longer than `--shutdown-timeout` exits 1 anyway. The batch is held in flight by the probe's sleep, so the
/// signals land inside it, not between batches.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RunnerStopTests {
    /// Starts a checkpointed run whose first batch sleeps `delay` ms in the probe, and waits until that call began.
    static func startInFlight(_ pipeline: ProbePipeline, _ extra: [String] = []) throws -> Support.Child {
        let child = try pipeline.start(extra)
        _ = child.waitFor(timeout: 30) { child.stderr.contains("call 1 began") || !child.process.isRunning }
        try #require(child.stderr.contains("call 1 began"), "the first batch never reached the probe:\n\(child.stderr)")
        return child
    }

    @Test func theFirstCtrlCLetsTheBatchInFlightFinishAndCommit() throws {
        let pipeline = try ProbePipeline(lines: 3, probe: "{delay_ms: 1000}")
        defer { pipeline.remove() }
        let child = try Self.startInFlight(pipeline)
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("stopping after the batch in flight"), "\(result.stderr)")
        #expect(result.stderr.contains("batch 0 at "), "the batch in flight finished:\n\(result.stderr)")
        #expect(result.stderr.contains("stopped: SIGINT"), "\(result.stderr)")
        #expect(pipeline.written == ProbePipeline.lines(3))
        let shown = try Support.sluice(["checkpoints", "show", pipeline.checkpoint.path])
        #expect(shown.stdout.contains("batch 0 committed"), "\(shown.stdout)\(shown.stderr)")
        #expect(!shown.stdout.contains("in flight"), "\(shown.stdout)")
    }

    @Test func aSecondCtrlCExitsAtOnceWith130AndCommitsNothing() throws {
        // The probe would hold the batch for 60 s: an exit within the wait below can only be the second signal's.
        let pipeline = try ProbePipeline(lines: 3, probe: "{delay_ms: 60000}")
        defer { pipeline.remove() }
        let child = try Self.startInFlight(pipeline)
        kill(child.process.processIdentifier, SIGINT)
        let first = child.waitFor(timeout: 10) { child.stderr.contains("stopping after the batch in flight") }
        try #require(first, "\(child.stderr)")
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 15)
        #expect(result.status == 130, "\(result.stderr)")
        #expect(result.stderr.contains("second signal: exiting now; the batch in flight is not committed"), "\(result.stderr)")
        #expect(!result.stderr.contains("batch 0 at "), "\(result.stderr)")
        #expect(pipeline.written.isEmpty)
        // A crash as far as the checkpoint is concerned: the planned batch is replayed by the next start.
        let shown = try Support.sluice(["checkpoints", "show", pipeline.checkpoint.path])
        #expect(shown.stdout.contains("no commits"), "\(shown.stdout)\(shown.stderr)")
        #expect(shown.stdout.contains("in flight: batch 0, replayed on the next start: lines[0] 0..<3"), "\(shown.stdout)")
    }

    @Test func aGracefulStopLongerThanTheShutdownTimeoutExitsWithStatus1() throws {
        let pipeline = try ProbePipeline(lines: 3, probe: "{delay_ms: 60000}")
        defer { pipeline.remove() }
        let child = try Self.startInFlight(pipeline, ["--shutdown-timeout", "1"])
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 20)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("graceful shutdown took longer than 1.0 s: exiting"), "\(result.stderr)")
        #expect(!result.stderr.contains("batch 0 at "), "\(result.stderr)")
        let shown = try Support.sluice(["checkpoints", "show", pipeline.checkpoint.path])
        #expect(shown.stdout.contains("no commits"), "\(shown.stdout)\(shown.stderr)")
    }
}
