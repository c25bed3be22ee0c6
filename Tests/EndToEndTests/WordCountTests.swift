import Foundation
import Testing

/// The README's word count, run exactly as the README runs it, checked against an independent count.
@Suite(.timeLimit(.minutes(3)))
struct WordCountTests {
    /// Counts words the way the example pipeline's split stage is configured, written independently of it.
    static func independentCount(directory: URL, separators: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        let separatorSet = Set(separators.unicodeScalars)
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) where file.hasSuffix(".txt") {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            var word = ""
            for scalar in text.unicodeScalars {
                if separatorSet.contains(scalar) || scalar == "\n" {
                    if !word.isEmpty { counts[word.lowercased(), default: 0] += 1 }
                    word = ""
                } else {
                    word.unicodeScalars.append(scalar)
                }
            }
            if !word.isEmpty { counts[word.lowercased(), default: 0] += 1 }
        }
        return counts
    }

    /// Parses console-sink output: batches of "(word,count)" lines under "Time: ... ms" headers.
    static func parseConsole(_ stdout: String) -> (batches: Int, counts: [String: Int]) {
        var batches = 0
        var counts: [String: Int] = [:]
        for line in stdout.split(separator: "\n") {
            if line.hasPrefix("Time: ") { batches += 1 }
            guard line.hasPrefix("("), line.hasSuffix(")"), let comma = line.lastIndex(of: ",") else { continue }
            let word = String(line[line.index(after: line.startIndex)..<comma])
            let count = Int(line[line.index(after: comma)..<line.index(before: line.endIndex)]) ?? -1
            counts[word, default: 0] += count
        }
        return (batches, counts)
    }

    @Test func theReadmeWordCountPrintsCorrectCountsPerBatch() throws {
        let result = try Support.sluice(
            ["run", "examples/wordcount/pipeline.yaml", "--until-idle"],
            directory: Support.repoRoot,
            timeout: 60
        )
        #expect(result.status == 0, "stderr:\n\(result.stderr)")
        let parsed = Self.parseConsole(result.stdout)
        let expected = try Self.independentCount(
            directory: Support.repoRoot.appendingPathComponent("examples/wordcount/data"),
            separators: " \t.,;:!?\"()"
        )
        #expect(!expected.isEmpty)
        #expect(parsed.counts == expected)
        // 35 lines at 12 per batch: 3 batches with input, then 2 idle ones.
        #expect(parsed.batches == 5, "stdout:\n\(result.stdout)")
        #expect(result.stderr.contains("batch 0 at "), "one progress line per batch on stderr")
        #expect(result.stderr.contains("stopped: no new input for 2 batches"))
    }
}
