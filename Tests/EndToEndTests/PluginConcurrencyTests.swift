import Foundation
import Testing

/// The host calls a plugin without `SLUICE_FLAG_CONCURRENT` one call at a time per instance, even when a batch is cut
/// into tasks that run in parallel; with the flag it may overlap them (docs/abi.md §5). The probe counts the calls of
/// its instance running at once and sleeps in each, so an overlap the host allows is seen.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct PluginConcurrencyTests {
    /// Runs one batch of 20000 records with `--parallelism 2` (tasks of 5000 records: several calls of the probe
    /// in one batch) and returns what the calls reported: "M at once" for each call.
    static func callsAtOnce(concurrent: Bool) throws -> [Int] {
        let pipeline = try ProbePipeline(lines: 20_000, probe: "{delay_ms: 300}", concurrent: concurrent, checkpoint: false)
        defer { pipeline.remove() }
        let result = try pipeline.run(["--batches", "1", "--parallelism", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(pipeline.written.count == 20_000)
        let atOnce = result.stderr.numbers(#/began, (\d+) at once/#)
        #expect(atOnce.count >= 2, "the batch was not cut into several tasks:\n\(result.stderr)")
        return atOnce
    }

    @Test func callsOfAPluginWithoutTheFlagNeverOverlap() throws {
        let atOnce = try Self.callsAtOnce(concurrent: false)
        #expect(atOnce.allSatisfy { $0 == 1 }, "\(atOnce)")
    }

    @Test func callsOfAPluginWithTheFlagDoOverlap() throws {
        let atOnce = try Self.callsAtOnce(concurrent: true)
        #expect(atOnce.contains { $0 > 1 }, "the host never overlapped calls, so the other test proves nothing: \(atOnce)")
    }
}
