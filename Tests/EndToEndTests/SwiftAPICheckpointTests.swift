import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The typed Swift API with a checkpoint directory (examples/swift-api with CHECKPOINT and OUTPUT): killed with
/// SIGKILL again and again and restarted, its files output is exactly that of the input counted once — every batch's
/// word counts once, and the window totals, the closure-kept statistics and the session events (state restored
/// across each kill) as an uninterrupted run gives them.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SwiftAPICheckpointTests {
    static let files = 16
    static let words = ["alpha", "beta", "gamma", "delta", "epsilon"]

    /// File n (12 lines: one batch, as the example reads 12 lines per batch) and its words.
    static func file(_ n: Int) -> [String] {
        (0..<12).map { line in (0...(line + n) % 4).map { words[($0 * 7 + line + n) % words.count] }.joined(separator: " ") }
    }

    static func counts(_ lines: [String]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for word in lines.flatMap({ $0.split(separator: " ") }) { counts[String(word), default: 0] += 1 }
        return counts
    }

    /// The records of each output file PREFIX-*, in batch order (names are batch times of the same length).
    static func outputs(_ directory: URL, prefix: String) -> [[String]] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasPrefix(prefix + "-") }.sorted()
        return names.map { name in
            let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").map(String.init)
        }
    }

    /// A `(word,{"batches":B,"total":T})` record of the example's statistics, as word → (total, batches).
    static func stats(_ records: [String]) -> [String: [Int]] {
        Dictionary(uniqueKeysWithValues: records.map { record -> (String, [Int]) in
            let inner = record.dropFirst().dropLast()
            let comma = inner.firstIndex(of: ",") ?? inner.endIndex
            let json = (try? JSONSerialization.jsonObject(with: Data(inner[comma...].dropFirst().utf8))) as? [String: Int] ?? [:]
            return (String(inner[..<comma]), [json["total"] ?? -1, json["batches"] ?? -1])
        })
    }

    /// updateStateByKey's state after each batch, counted here: every word seen so far, its occurrences and the
    /// number of batches it was in.
    static func expectedStats() -> [[String: [Int]]] {
        var state: [String: [Int]] = [:]
        return (0..<files).map { n in
            for (word, count) in counts(file(n)) {
                let old = state[word] ?? [0, 0]
                state[word] = [old[0] + count, old[1] + 1]
            }
            return state
        }
    }

    /// A session event `{"ended":E,"seen":S,"word":W}` as "W S E".
    static func session(_ record: String) -> String {
        let json = (try? JSONSerialization.jsonObject(with: Data(record.utf8))) as? [String: Any] ?? [:]
        return "\(json["word"] as? String ?? "?") \(json["seen"] as? Int ?? -1) \(json["ended"] as? Bool ?? false)"
    }

    /// mapWithState's events per batch by Spark's rule, simulated here: each occurrence counts on in its word's
    /// session; a word without occurrences for more than one batch (its last batch < this one − 1) ends its session
    /// after the batch's occurrences, with one event. Batches past the input are idle.
    static func expectedSessions(batches: Int) -> [[String]] {
        var seen: [String: Int] = [:]
        var last: [String: Int] = [:]
        return (0..<batches).map { n in
            var events: [String] = []
            let words = n < files ? file(n).flatMap { $0.split(separator: " ").map(String.init) } : []
            for word in words {
                seen[word, default: 0] += 1
                last[word] = n
                events.append("\(word) \(seen[word]!) false")
            }
            for (word, at) in last where n - at > 1 {
                events.append("\(word) \(seen[word]!) true")
                seen[word] = nil
                last[word] = nil
            }
            return events.sorted()
        }
    }

    @Test func theTypedAPISurvivesSIGKILLWithExactOutput() throws {
        let work = try Support.makeTemporaryDirectory("sluice-swift-api-kill")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = work.appendingPathComponent("in")
        let output = work.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        for n in 0..<Self.files {
            try (Self.file(n).joined(separator: "\n") + "\n").write(
                to: input.appendingPathComponent(String(format: "part-%03d.txt", n)), atomically: true, encoding: .utf8)
        }
        let program = Support.binDirectory.appendingPathComponent("swift-wordcount")
        let arguments = [input.path, work.appendingPathComponent("ck").path, output.path, "40"]
        var random = SystemRandomNumberGenerator()
        var killed = 0
        var finished: Support.Result?
        for _ in 0..<(Self.files + 5) {
            let reached = Self.outputs(output, prefix: "window").count
            let child = try Support.Child(program, arguments)
            // Killed 0-30 ms after it wrote a batch no earlier run wrote: inside a batch or the wait before the next.
            let progressed = child.waitFor(timeout: 60) { !child.process.isRunning || Self.outputs(output, prefix: "window").count > reached }
            try #require(progressed, "no progress: \(child.stderr)")
            if child.process.isRunning {
                _ = child.waitFor(timeout: Double.random(in: 0...0.03, using: &random)) { !child.process.isRunning }
                kill(child.process.processIdentifier, SIGKILL)
                let result = child.wait(timeout: 30)
                if result.status == SIGKILL || result.status == 137 {
                    killed += 1
                    continue
                }
                finished = result
            } else {
                finished = child.wait(timeout: 30)
            }
            break
        }
        let result = try #require(finished, "the program never finished on its own after \(killed) kills")
        #expect(result.status == 0, "stderr:\n\(result.stderr)")
        #expect(killed >= 3, "only \(killed) kills")

        // Every input file's counts once (empty idle batches aside), in order; no temporary file left.
        let expected = (0..<Self.files).map { Self.counts(Self.file($0)) }
        let counts = Self.outputs(output, prefix: "counts").filter { !$0.isEmpty }.map { records in
            Dictionary(uniqueKeysWithValues: records.map { record -> (String, Int) in
                // (word,count)
                let inner = record.dropFirst().dropLast().split(separator: ",")
                return (String(inner[0]), Int(inner[1]) ?? -1)
            })
        }
        #expect(counts == expected, "after \(killed) kills")
        // The window total of batch n is the words of batches n-1 and n: state restored exactly after every kill.
        let totals = Self.outputs(output, prefix: "window").prefix(Self.files).map { $0.first.flatMap { Int($0) } ?? -1 }
        let sizes = expected.map { $0.values.reduce(0, +) }
        #expect(totals == sizes.indices.map { sizes[$0] + ($0 > 0 ? sizes[$0 - 1] : 0) }, "after \(killed) kills")
        // Closure state (updateStateByKey with a Codable state type, mapWithState with a timeout) restored exactly too.
        #expect(Self.outputs(output, prefix: "stats").prefix(Self.files).map(Self.stats) == Self.expectedStats(), "after \(killed) kills")
        let sessions = Self.outputs(output, prefix: "sessions").map { $0.map(Self.session).sorted() }
        #expect(Array(sessions.prefix(Self.files + 2)) == Self.expectedSessions(batches: Self.files + 2), "after \(killed) kills")
        let leftovers = (try FileManager.default.contentsOfDirectory(atPath: output.path)).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
