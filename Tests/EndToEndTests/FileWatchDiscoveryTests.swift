import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The file-watch source's main path: files that arrive while `sluice run` runs, found by inotify or by polling,
/// with the default `start: latest` (the files present at start are skipped).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FileWatchDiscoveryTests {
    /// How the watched directory is discovered, and whether a file moved in must be read.
    struct Discovery: CustomTestStringConvertible, Sendable {
        var useInotify: Bool
        var pollMilliseconds: Int
        var finds: Bool
        var testDescription: String { "use_inotify: \(useInotify), poll_interval_ms: \(pollMilliseconds)" }
    }

    static let discoveries = [
        // inotify alone (the rescan is an hour away) sees a file moved in.
        Discovery(useInotify: true, pollMilliseconds: 3_600_000, finds: true),
        // Polling alone finds it within a few polls.
        Discovery(useInotify: false, pollMilliseconds: 20, finds: true),
        // Polling alone with a rescan an hour away: false really turns inotify off, and the interval is honoured.
        Discovery(useInotify: false, pollMilliseconds: 3_600_000, finds: false),
    ]

    @Test(arguments: discoveries)
    func aFileMovedInWhileRunningIsReadOnceAndThosePresentAtStartAreSkipped(discovery: Discovery) throws {
        let work = try Support.makeTemporaryDirectory("sluice-discovery")
        defer { try? FileManager.default.removeItem(at: work) }
        let inbox = work.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        try "old-1\nold-2\n".write(to: inbox.appendingPathComponent("old.txt"), atomically: true, encoding: .utf8)
        // No `start`: the default is `latest`.
        try """
            name: discovery
            batch_interval: 50ms
            sources:
              files: {plugin: file-watch, config: {directory: in, use_inotify: \(discovery.useInotify), poll_interval_ms: \(discovery.pollMilliseconds)}}
            sinks:
              lines: {from: files, plugin: files, config: {prefix: out/lines, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "plain"], directory: work)
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        // Batch 0 is reported after the source started, so the directory's listing at start has been taken.
        let started = child.waitFor(timeout: 60) { ChaosTests.lastReportedBatch(child.stderr) >= 0 || !child.process.isRunning }
        try #require(started && child.process.isRunning, "\(child.stderr)")

        // Written elsewhere, then moved in whole (as the docs ask).
        let staging = work.appendingPathComponent("new.staging")
        try "new-1\nnew-2\n".write(to: staging, atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(at: staging, to: inbox.appendingPathComponent("new.txt"))
        let movedAfter = ChaosTests.lastReportedBatch(child.stderr)
        let out = work.appendingPathComponent("out")
        if discovery.finds {
            let read = child.waitFor(timeout: 30) { Support.sinkRecords(out, prefix: "lines") == ["new-1", "new-2"] }
            #expect(read, "\(Support.sinkRecords(out, prefix: "lines")); stderr:\n\(child.stderr)")
            // Ten more batches: the file is not read a second time.
            let more = child.waitFor(timeout: 30) { ChaosTests.lastReportedBatch(child.stderr) >= movedAfter + 12 }
            #expect(more, "\(child.stderr)")
        } else {
            // Twenty batches (a second at 50 ms), many polls of the faster configuration, and nothing is found.
            let passed = child.waitFor(timeout: 30) { ChaosTests.lastReportedBatch(child.stderr) >= movedAfter + 20 }
            #expect(passed, "\(child.stderr)")
        }
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Support.sinkRecords(out, prefix: "lines") == (discovery.finds ? ["new-1", "new-2"] : []), "old.txt is never read")
    }
}
