import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice checkpoints` takes the checkpoint directory's lock: it refuses to touch a directory a running pipeline
/// uses (docs/fault-tolerance.md, "Inspect and repair").
@Suite(.serialized, .timeLimit(.minutes(2)))
struct CheckpointCommandTests {
    @Test func everySubcommandRefusesWhileARunHoldsTheDirectory() throws {
        let pipeline = try ProbePipeline(lines: 6, maxRecords: 2)
        defer { pipeline.remove() }
        let child = try pipeline.start([])
        _ = child.waitFor(timeout: 30) { child.stderr.contains("batch 0 at ") || !child.process.isRunning }
        try #require(child.stderr.contains("batch 0 at "), "\(child.stderr)")
        let directory = pipeline.checkpoint.path
        let refusal = "checkpoint directory \(directory) is in use by another sluice process (pid \(child.process.processIdentifier))"
        for arguments in [["show", directory], ["reset", directory], ["reset", "--state", directory], ["set", directory, "lines", "0", "0"]] {
            let result = try Support.sluice(["checkpoints"] + arguments)
            #expect(result.status == 1, "\(arguments): \(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains(refusal), "\(arguments): \(result.stderr)")
        }
        kill(child.process.processIdentifier, SIGINT)
        let stopped = child.wait(timeout: 30)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        // Nothing was reset or moved while the run held the lock: the next run goes on where this one stopped.
        let last = try #require(stopped.stderr.numbers(#/batch (\d+) at /#).max())
        let shown = try Support.sluice(["checkpoints", "show", directory])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("batch \(last) committed"), "\(shown.stdout)")
        #expect(shown.stdout.contains("lines   0          \(min(6, 2 * (last + 1)))"), "\(shown.stdout)")
    }
}
