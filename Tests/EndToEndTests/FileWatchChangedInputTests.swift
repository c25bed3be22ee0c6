import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Files must be complete when they appear and stay as they were (docs/fault-tolerance.md): a file deleted or cut
/// short after it was indexed and before its lines were read fails the batch that reads them, naming the file and
/// the lines; `sluice checkpoints set` moves past them.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FileWatchChangedInputTests {
    enum Change: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case deleted, cutShort
        var testDescription: String { rawValue }

        func apply(to file: URL) throws {
            switch self {
            case .deleted: try FileManager.default.removeItem(at: file)
            case .cutShort: try #require(truncate(file.path, 0) == 0, "cannot truncate \(file.path)")
            }
        }
    }

    static func pipeline(_ work: URL, checkpoint: Bool, linesPerBatch: Int) throws {
        try FileManager.default.createDirectory(at: work.appendingPathComponent("in"), withIntermediateDirectories: true)
        try """
            name: changed-input
            batch_interval: 50ms
            \(checkpoint ? "checkpoint: ck" : "")
            sources:
              files: {plugin: file-watch, max_records_per_partition: \(linesPerBatch), config: {directory: in, start: earliest}}
            sinks:
              lines: {from: files, plugin: files, config: {prefix: out/lines, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
    }

    /// While the pipeline runs: a file of 1000 lines is read one line per batch, and changed after the first batch.
    @Test(arguments: Change.allCases)
    func aFileChangedWhileItIsReadFailsTheBatchNamingItsLines(change: Change) throws {
        let work = try Support.makeTemporaryDirectory("sluice-changed")
        defer { try? FileManager.default.removeItem(at: work) }
        try Self.pipeline(work, checkpoint: false, linesPerBatch: 1)
        let file = work.appendingPathComponent("in/a.txt")
        try (1...1000).map { "a-\($0)\n" }.joined().write(to: file, atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", "pipeline.yaml", "--progress", "plain"], directory: work)
        let started = child.waitFor(timeout: 60) { ChaosTests.lastReportedBatch(child.stderr) >= 0 || !child.process.isRunning }
        try #require(started, "\(child.stderr)")
        try change.apply(to: file)
        let result = child.wait(timeout: 60)
        #expect(result.status == 1, "\(result.stderr)")
        let failure = result.stderr.split(separator: "\n").first { $0.contains("stopped: batch") && $0.contains("failed") }.map(String.init) ?? ""
        #expect(failure.contains(file.path) && failure.contains(#/lines \d+\.\.<\d+/#), "the failure names the file and the lines:\n\(result.stderr)")
        let read = Support.sinkRecords(work.appendingPathComponent("out"), prefix: "lines")
        #expect(!read.isEmpty && read == (1...read.count).map { "a-\($0)" }, "the lines before the change, once: \(read)")
    }

    /// A file deleted while the host was down: the batch that would read its uncommitted lines fails at every start,
    /// naming them, until `checkpoints set` moves the position past them; then the next file is read.
    @Test func aFileGoneWhileTheHostWasDownFailsUntilCheckpointsSetMovesPastIt() throws {
        let work = try Support.makeTemporaryDirectory("sluice-gone")
        defer { try? FileManager.default.removeItem(at: work) }
        try Self.pipeline(work, checkpoint: true, linesPerBatch: 4)
        try (1...6).map { "a-\($0)\n" }.joined().write(to: work.appendingPathComponent("in/a.txt"), atomically: true, encoding: .utf8)
        try "b-1\nb-2\n".write(to: work.appendingPathComponent("in/b.txt"), atomically: true, encoding: .utf8)
        let run = { try Support.sluice(["run", "pipeline.yaml", "--progress", "plain", "--until-idle"], directory: work, timeout: 60) }
        let first = try Support.sluice(["run", "pipeline.yaml", "--progress", "plain", "--batches", "1"], directory: work, timeout: 60)
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.removeItem(at: work.appendingPathComponent("in/a.txt"))

        for _ in 0..<2 {
            let failed = try run()
            #expect(failed.status == 1, "\(failed.stderr)")
            #expect(failed.stderr.contains("'a.txt' (lines 0..<6) is gone or changed since it was indexed"), "\(failed.stderr)")
            #expect(failed.stderr.contains("lines 0..<6 were in 'a.txt', which is gone or changed since it was indexed"), "\(failed.stderr)")
        }
        let set = try Support.sluice(["checkpoints", "set", "ck", "files", "0", "6"], directory: work)
        #expect(set.stdout.contains("files[0]: next offset 4 -> 6"), "\(set.stdout)\(set.stderr)")
        let resumed = try run()
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(Support.sinkRecords(work.appendingPathComponent("out"), prefix: "lines") == ["a-1", "a-2", "a-3", "a-4", "b-1", "b-2"])
    }
}
