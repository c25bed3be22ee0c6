import Foundation
import Testing

/// A plugin that fails a batch stops the run with status 1, names the stage, and commits nothing of that batch: a
/// sink that keeps asking for a retry gives up after its bounded attempts (docs/abi.md §9), and a transform that
/// returns SLUICE_ERR fails the batch at once.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct BatchFailureTests {
    @Test func aSinkThatAlwaysAsksForARetryGivesUpAfterSixAttempts() throws {
        let pipeline = try ProbePipeline(lines: 3, sink: "{from: probe, plugin: c-retry-sink, config: {failures: 1000}}")
        defer { pipeline.remove() }
        try pipeline.addPlugin("retry_sink.c", as: "retrysink")
        let started = Date()
        let result = try pipeline.run(["--batches", "1"])
        let seconds = Date().timeIntervalSince(started)
        #expect(result.status == 1, "\(result.stderr)")
        // Each retry is announced as a warning naming the sink, with the waits of 100, 200, 400, 800 and 1600 ms.
        #expect(result.stderr.contains("[warning] out: batch 0 asked for a retry (disk busy (999 more))"), "\(result.stderr)")
        for (attempt, wait) in zip(2...6, [100, 200, 400, 800, 1600]) {
            #expect(result.stderr.contains("replaying it from begin in \(wait) ms, attempt \(attempt) of 6"), "\(result.stderr)")
        }
        #expect(!result.stderr.contains("attempt 7"), "\(result.stderr)")
        // The sixth commit answered RETRY with 994 of its 1000 failures left: six attempts, no more.
        #expect(result.stderr.contains("sluice: error: batch 0 failed: out: disk busy (994 more) (gave up after 6 attempts)"), "\(result.stderr)")
        #expect(seconds >= 3.1, "the waits add up to 3.1 s; it took \(seconds) s")
        let shown = try Support.sluice(["checkpoints", "show", pipeline.checkpoint.path])
        #expect(shown.stdout.contains("no commits"), "\(shown.stdout)\(shown.stderr)")
        #expect(shown.stdout.contains("in flight: batch 0"), "\(shown.stdout)")
    }

    @Test func aTransformReturningAnErrorFailsTheBatch() throws {
        let pipeline = try ProbePipeline(lines: 3, probe: "{fail: \"poisoned record\"}")
        defer { pipeline.remove() }
        let result = try pipeline.run(["--batches", "2"])
        #expect(result.status == 1, "\(result.stderr)")
        // The stage's name, then the plugin's own last_error.
        #expect(result.stderr.contains("sluice: error: batch 0 failed: probe: poisoned record\n"), "\(result.stderr)")
        #expect(!result.stderr.contains("batch 0 at "), "\(result.stderr)")
        #expect(pipeline.written.isEmpty, "the sink got the failed batch")
        let shown = try Support.sluice(["checkpoints", "show", pipeline.checkpoint.path])
        #expect(shown.stdout.contains("no commits"), "\(shown.stdout)\(shown.stderr)")
    }
}
