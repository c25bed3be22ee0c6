import Foundation
import Testing

/// Windows and state through `sluice run`, checked against counts computed here from the same text.
@Suite(.timeLimit(.minutes(3)))
struct WindowedPipelineTests {
    /// The words of each batch of the bundled text: lines in file-name order, 12 lines per batch, split like the
    /// pipeline's split stage (separators, lower case).
    static func wordsPerBatch() throws -> [[String]] {
        let directory = Support.repoRoot.appendingPathComponent("examples/wordcount/data")
        var lines: [String] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() where file.hasSuffix(".txt") {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            var fileLines = text.components(separatedBy: "\n")
            if fileLines.last == "" { fileLines.removeLast() }
            lines += fileLines
        }
        let separators = Set(" \t.,;:!?\"()".unicodeScalars)
        return stride(from: 0, to: lines.count, by: 12).map { start in
            lines[start..<min(lines.count, start + 12)].flatMap { line in
                line.unicodeScalars.split { separators.contains($0) }.map { String(String.UnicodeScalarView($0)).lowercased() }
            }
        }
    }

    /// The `word<TAB>count` files of a files sink, in batch order.
    static func outputs(_ directory: URL, prefix: String) throws -> [[String: Int]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix(prefix + "-") && $0.hasSuffix(".tsv") }
            .sorted { Int($0.dropFirst(prefix.count + 1).dropLast(4))! < Int($1.dropFirst(prefix.count + 1).dropLast(4))! }
        return try names.map { name in
            var counts: [String: Int] = [:]
            for line in try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8).split(separator: "\n") {
                let fields = line.split(separator: "\t")
                counts[String(fields[0])] = Int(fields[1])
            }
            return counts
        }
    }

    @Test func slidingWindowCountsAndRunningTotalsMatchAnIndependentCount() throws {
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let data = Support.repoRoot.appendingPathComponent("examples/wordcount/data").path
        try """
            name: windowed
            batch_interval: 50ms
            sources:
              lines:
                plugin: file-watch
                max_records_per_partition: 12
                config: {directory: "\(data)", glob: "*.txt", start: earliest}
            stages:
              words:
                from: lines
                plugin: split
                config: {separators: " \\t.,;:!?\\"()", lowercase: true}
              recent: {from: words, op: countByValueAndWindow, window: 100ms, inverse: true}
              pairs:
                from: lines
                plugin: split
                config: {separators: " \\t.,;:!?\\"()", lowercase: true, output: pairs}
              totals: {from: pairs, op: updateStateByKey, function: sum}
            sinks:
              recent: {from: recent, plugin: files, config: {prefix: out/recent, suffix: tsv, format: tsv}}
              totals: {from: totals, plugin: files, config: {prefix: out/totals, suffix: tsv, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: work.appendingPathComponent("out"), withIntermediateDirectories: true)

        let result = try Support.sluice(["run", "pipeline.yaml", "--until-idle", "--progress", "plain"], directory: work, timeout: 60)
        #expect(result.status == 0, "stderr:\n\(result.stderr)")

        let batches = try Self.wordsPerBatch()
        #expect(batches.count == 3)
        let recent = try Self.outputs(work.appendingPathComponent("out"), prefix: "recent")
        let totals = try Self.outputs(work.appendingPathComponent("out"), prefix: "totals")
        // Three batches with input, then two idle ones.
        #expect(recent.count == 5)
        #expect(totals.count == 5)
        let words = batches + [[], []]
        for n in 0..<min(recent.count, words.count) {
            let window = words[max(0, n - 1)...n].flatMap { $0 }
            #expect(recent[n] == Dictionary(window.map { ($0, 1) }, uniquingKeysWith: +), "window ending at batch \(n)")
            let seen = words[0...n].flatMap { $0 }
            #expect(totals[n] == Dictionary(seen.map { ($0, 1) }, uniquingKeysWith: +), "running totals after batch \(n)")
        }
        #expect(recent.last?.isEmpty == true, "the window is empty once two idle batches have passed")
    }
}
