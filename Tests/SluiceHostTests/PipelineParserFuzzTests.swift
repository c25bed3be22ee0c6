import Foundation
import PropertyBased
import SluiceHost
import Testing

/// Random mutations of real pipeline files through the parser and the resolver: none may crash or hang, and every
/// error must point into the file (a line that exists, a column, the file's name).
struct PipelineParserFuzzTests {
    static let windowed = """
        name: windows
        batch_interval: 1s
        sources:
          a: {plugin: file-watch, max_records_per_partition: 100, config: {directory: /tmp, start: earliest}}
          b: {plugin: file-watch, config: {directory: /tmp/b}}
        stages:
          words: {from: a, plugin: split, config: {separators: " ,", lowercase: true}}
          more: {from: b, plugin: split}
          both: {from: [words, more], op: union}
          recent: {from: both, op: countByValueAndWindow, window: 30s, slide: 10s, inverse: true}
          totals: {from: both, op: reduceByKey, function: sum, partitions: 4}
          state: {from: both, op: mapWithState, function: sum, timeout: 5s}
          joined: {from: [totals, state], op: leftOuterJoin}
        sinks:
          out: {from: recent, plugin: console, config: {limit: 10}}
          files: {from: joined, plugin: files, config: {directory: /tmp/out}}
        """

    static var seeds: [String] {
        get throws {
            let example = TestPaths.repoRoot.appendingPathComponent("examples/wordcount/pipeline.yaml")
            return [try String(contentsOf: example, encoding: .utf8), PipelineFileErrorTests.valid, windowed]
        }
    }

    /// Characters that matter to YAML and to the pipeline's own syntax, and some that do not.
    static let alphabet = Array(":{}[],&*!|>'\"#-?%@`\n\t \r\\0123456789hmsax.~${}é\u{1}")
    /// Whole scalars that stress the checks of values.
    static let scalars = [
        "999999999999999999h", "0ms", "-1s", "1e308s", "nan s", "100000000000", "-3", "0", "*nope", "&a", "[]", "{}",
        "null", "~", "\"\"", "${X}", "10000000h", "4096", String(repeating: "a", count: 300),
    ]

    static func mutate(_ text: String, using rng: inout Xoshiro) -> String {
        var characters = Array(text)
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            guard !characters.isEmpty else { break }
            let at = Int.random(in: 0..<characters.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: characters.remove(at: at)
            case 1: characters.insert(alphabet.randomElement(using: &rng)!, at: at)
            case 2: characters[at] = alphabet.randomElement(using: &rng)!
            case 3:
                // Replace the value after a colon with a hostile scalar.
                if let colon = characters[at...].firstIndex(of: ":") {
                    let end = characters[colon...].firstIndex { $0 == "\n" || $0 == "," || $0 == "}" } ?? characters.endIndex
                    characters.replaceSubrange((colon + 1)..<end, with: " " + scalars.randomElement(using: &rng)!)
                }
            case 4:
                // Repeat a line (repeated keys, repeated names).
                var lines = String(characters).components(separatedBy: "\n")
                let line = Int.random(in: 0..<lines.count, using: &rng)
                lines.insert(lines[line], at: Int.random(in: 0...lines.count, using: &rng))
                characters = Array(lines.joined(separator: "\n"))
            default:
                // Drop a line (missing keys, dangling references).
                var lines = String(characters).components(separatedBy: "\n")
                lines.remove(at: Int.random(in: 0..<lines.count, using: &rng))
                characters = Array(lines.joined(separator: "\n"))
            }
        }
        return String(characters)
    }

    @Test(.timeLimit(.minutes(3)))
    func mutatedPipelinesGiveLocatedErrorsAndNeverCrash() throws {
        // A fixed seed: the same cases on every run, so a failure names a case that can be replayed.
        var rng = Xoshiro(seed: (0x5EED_1234, 1, 2, 3))
        let seeds = try Self.seeds
        var errorsSeen = 0
        var validSeen = 0
        for index in 0..<3000 {
            let text = Self.mutate(seeds[index % seeds.count], using: &rng)
            let file = "/fuzz/case-\(index).yaml"
            let errors = PipelineFileErrorTests.problems(text, file: file)
            if errors.isEmpty { validSeen += 1 }
            errorsSeen += errors.count
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
            for error in errors {
                #expect(error.file == file, "case \(index): \(error)")
                #expect((1...(lines + 1)).contains(error.line), "case \(index): line out of the file: \(error)\n\(text)")
                #expect(error.column >= 1, "case \(index): \(error)")
                #expect(error.description.hasPrefix("\(file):\(error.line):\(error.column): error: "), "case \(index)")
                #expect(!error.message.isEmpty, "case \(index)")
            }
        }
        // The mutations must exercise both paths, or the test proves nothing.
        #expect(errorsSeen > 1000)
        #expect(validSeen > 50)
    }
}
