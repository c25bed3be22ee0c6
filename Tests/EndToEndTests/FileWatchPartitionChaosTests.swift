import Foundation
import Testing

extension ChaosTests.Expected {
    /// The expectation for batches holding exactly `words`, batch by batch.
    init(words: [[String]]) { self.words = words }
}

/// A file-watch source with three partitions under SIGKILL: every restart must give each file the partition and
/// offsets it had (the index log), so that every batch holds the same lines and the output of the counts and the
/// running totals is exactly what an independent count of the files gives.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct FileWatchPartitionChaosTests {
    static let linesPerPartition = 4
    static let batches = 40

    @Test func partitionedFilesAreExactlyOnceAcrossKills() throws {
        let work = try Support.makeTemporaryDirectory("sluice-partition-chaos")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = work.appendingPathComponent("input")
        let out = work.appendingPathComponent("out")
        for directory in [input, out] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        // Three files of equal length, found in one scan: part-0 goes to partition 0, part-1 to 1, part-2 to 2 (each
        // to the emptiest). A batch takes the next `linesPerPartition` lines of every partition.
        let lines = try ChaosTests.writeInput(input)
        let perFile = lines.count / 3
        let files = (0..<3).map { Array(lines[($0 * perFile)..<(($0 + 1) * perFile)]) }
        let words = (0..<Self.batches).map { batch in
            files.flatMap { file in
                let first = min(file.count, batch * Self.linesPerPartition)
                return file[first..<min(file.count, first + Self.linesPerPartition)].flatMap { $0.split(separator: " ").map(String.init) }
            }
        }
        let expected = ChaosTests.Expected(words: words)
        let pipeline = """
            name: partition-chaos
            batch_interval: 50ms
            checkpoint: "\(work.appendingPathComponent("ck").path)"
            sources:
              lines:
                plugin: file-watch
                max_records_per_partition: \(Self.linesPerPartition)
                config: {directory: "\(input.path)", glob: "*.txt", start: earliest, partitions: 3}
            stages:
              words: {from: lines, plugin: split}
              pairs: {from: lines, plugin: split, config: {output: pairs}}
              counts: {from: words, op: countByValue}
              totals: {from: pairs, op: updateStateByKey, function: sum}
            sinks:
              counts: {from: counts, plugin: files, config: {prefix: "\(out.path)/counts", suffix: tsv, format: tsv}}
              totals: {from: totals, plugin: files, config: {prefix: "\(out.path)/totals", suffix: tsv, format: tsv}}
            """
        let file = work.appendingPathComponent("partition-chaos.yaml")
        try pipeline.write(to: file, atomically: true, encoding: .utf8)
        let arguments = ["run", file.path, "--batches", "\(Self.batches)", "--progress", "plain"]

        let killed = try ChaosTests.runUnderKills(arguments, batches: Self.batches)
        #expect(killed >= 10, "only \(killed) kills before the run finished")
        #expect(words.allSatisfy { !$0.isEmpty }, "every batch has input from the files")
        try expected.check(out, sinks: ["counts", "totals"], after: "\(killed) kills")
        ChaosTests.expectNoTemporaryFiles(under: work, after: "\(killed) kills")
    }
}
