// The Spark Streaming guide's word count, written against Sluice's typed Swift API instead of a pipeline file,
// plus a sliding window: the same operator graph `sluice run examples/wordcount/pipeline.yaml` builds.
//
//   swift build && .build/debug/swift-wordcount [DIRECTORY]
//
// DIRECTORY defaults to examples/wordcount/data (run it from the repository root).

import Foundation
import Sluice

let directory = CommandLine.arguments.dropFirst().first ?? "examples/wordcount/data"
let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path

do {
    let context = StreamingContext(batchInterval: .milliseconds(500))

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
    let recent = pairs.reduceByKeyAndWindow(+, inverse: -, .seconds(1))
    recent.map { Int64($0.value) }.reduce(.sum).foreachBatch { info, totals in
        print("batch \(info.id): \(totals.first ?? 0) words in the last second")
    }

    let summary = try context.run(untilIdle: 2)
    print("\(summary.batches) batches, \(summary.records) lines")
} catch {
    FileHandle.standardError.write(Data("swift-wordcount: \(error)\n".utf8))
    exit(1)
}
