// The Spark Streaming guide's word count, written against Sluice's typed Swift API instead of a pipeline file,
// plus a sliding window, running statistics per word (`updateStateByKey` with a state type of its own) and word
// "sessions" that end after a quiet interval (`mapWithState` with a timeout).
//
//   swift build && .build/debug/swift-wordcount [DIRECTORY [CHECKPOINT OUTPUT INTERVAL_MS]]
//
// DIRECTORY defaults to examples/wordcount/data (run it from the repository root). With CHECKPOINT, progress and all
// state are kept there and a run resumes where the last one stopped (even after SIGKILL); each batch's word counts,
// window total, statistics and session events are also written, once, to OUTPUT/counts-, OUTPUT/window-,
// OUTPUT/stats- and OUTPUT/sessions-<batch time>.

import Foundation
import Sluice

/// A word's running statistics: how often it was seen, and in how many batches. A `CodableStreamValue`, so it is
/// checkpointed (as JSON) and written to sinks like any element.
struct WordStats: CodableStreamValue {
    var total: Int64
    var batches: Int64
}

/// A word's session: its occurrences until a whole batch interval passes without it.
struct SessionEvent: CodableStreamValue {
    var word: String
    var seen: Int64
    var ended: Bool
}

let arguments = Array(CommandLine.arguments.dropFirst())
let directory = arguments.first ?? "examples/wordcount/data"
let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
let checkpoint = arguments.count >= 4 ? arguments[1] : nil
let output = arguments.count >= 4 ? URL(fileURLWithPath: arguments[2]).standardizedFileURL.path : nil
let interval = arguments.count >= 4 ? Int(arguments[3]) ?? 500 : 500

do {
    let context = StreamingContext(batchInterval: .milliseconds(interval), checkpointDirectory: checkpoint)

    // file-watch source plugin, 12 lines per batch: the bundled text spans three batches.
    let lines = try context.source(
        plugin: "file-watch",
        config: #"{"directory": "\#(absolute)", "glob": "*.txt", "start": "earliest"}"#,
        maxRecordsPerPartition: 12
    )
    let words = lines.flatMap { line in
        line.lowercased().split(whereSeparator: { " \t.,;:!?\"()".contains($0) }).map(String.init)
    }
    let pairs = words.map { Pair($0, Int64(1)) }

    // Per batch: reduceByKey with a Swift closure (combined in batches, as a tree).
    let counts = pairs.reduceByKey(+)
    counts.foreachBatch { info, counts in
        let top = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(5)
        print("batch \(info.id): \(counts.count) distinct words; top: " + top.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }

    // Over the last two batches, with the inverse function: what leaves the window is subtracted.
    let recent = pairs.reduceByKeyAndWindow(+, inverse: -, .milliseconds(2 * interval))
    let totals = recent.map { Int64($0.value) }.reduce(.sum)
    totals.foreachBatch { info, totals in
        print("batch \(info.id): \(totals.first ?? 0) words in the last second")
    }
    // Spark's updateStateByKey(f): every word ever seen, its state updated from each batch's occurrences.
    let stats = pairs.updateStateByKey { (ones: [Int64], state: WordStats?) -> WordStats? in
        guard !ones.isEmpty else { return state }  // not in this batch: unchanged (nil would forget the word)
        var stats = state ?? WordStats(total: 0, batches: 0)
        stats.total += ones.reduce(0, +)
        stats.batches += 1
        return stats
    }

    // Spark's mapWithState(StateSpec.function(f).timeout(t)): one event per occurrence, and one when the session
    // times out (no occurrence for more than one interval).
    let spec = StateSpec.function { (word: String, one: Int64?, state: State<Int64>) -> SessionEvent in
        if state.isTimingOut { return SessionEvent(word: word, seen: state.get(), ended: true) }
        let seen = (state.getOption() ?? 0) + (one ?? 0)
        state.update(seen)
        return SessionEvent(word: word, seen: seen, ended: false)
    }
    let sessions = pairs.mapWithState(spec.timeout(.milliseconds(interval)))
    sessions.foreachBatch { info, events in
        let ended = events.filter(\.ended).map(\.word).sorted()
        if !ended.isEmpty { print("batch \(info.id): \(ended.count) sessions ended, " + ended.prefix(5).joined(separator: " ") + " …") }
    }

    if let output {
        // The files sink replaces a batch's file when the batch runs again: exactly once with the checkpoint.
        try counts.to(plugin: "files", config: #"{"prefix": "\#(output)/counts"}"#)
        try totals.to(plugin: "files", config: #"{"prefix": "\#(output)/window"}"#)
        try stats.to(plugin: "files", config: #"{"prefix": "\#(output)/stats"}"#)
        try sessions.to(plugin: "files", config: #"{"prefix": "\#(output)/sessions"}"#)
    }

    let summary = try context.run(untilIdle: 2)
    print("\(summary.batches) batches, \(summary.records) lines")
} catch {
    FileHandle.standardError.write(Data("swift-wordcount: \(error)\n".utf8))
    exit(1)
}
