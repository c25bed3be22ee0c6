// The Spark Streaming guide's word count, written against Sluice's typed Swift API instead of a pipeline file,
// plus a sliding window: the same operator graph `sluice run examples/wordcount/pipeline.yaml` builds.
//
//   swift build && .build/debug/swift-wordcount [DIRECTORY [CHECKPOINT OUTPUT INTERVAL_MS]]
//
// DIRECTORY defaults to examples/wordcount/data (run it from the repository root). With CHECKPOINT, progress and the
// window's state are kept there and a run resumes where the last one stopped (even after SIGKILL); each batch's word
// counts and window total are also written, once, to OUTPUT/counts-<batch time> and OUTPUT/window-<batch time>.

import Foundation
import Sluice

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
    if let output {
        // The files sink replaces a batch's file when the batch runs again: exactly once with the checkpoint.
        try counts.to(plugin: "files", config: #"{"prefix": "\#(output)/counts"}"#)
        try totals.to(plugin: "files", config: #"{"prefix": "\#(output)/window"}"#)
    }

    let summary = try context.run(untilIdle: 2)
    print("\(summary.batches) batches, \(summary.records) lines")
} catch {
    FileHandle.standardError.write(Data("swift-wordcount: \(error)\n".utf8))
    exit(1)
}
