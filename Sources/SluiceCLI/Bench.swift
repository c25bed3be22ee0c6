import ArgumentParser
import Foundation
import SluiceCore
import SluiceHost
import SluiceLoader
import SluiceSDK

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Micro-benchmarks of the host (see docs/benchmarks.md).",
        subcommands: [Boundary.self]
    )
}

extension Bench {
    /// The cost of the plugin boundary: the same no-op stage built into the host, and loaded from a `.so`.
    struct Boundary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare a no-op transform built into the host with the `noop` plugin loaded from its .so.",
            discussion: """
                Runs batches of text records through (a) a copy stage compiled into the host, (b) the noop plugin \
                in `copy` mode (the same loop behind the C ABI), and (c) the noop plugin in `passthrough` mode (the \
                call alone). Rounds alternate between them so that machine noise hits all alike; medians are \
                reported in nanoseconds per record. Build with -c release for meaningful numbers.
                """
        )

        @Option(help: "Records in total per measurement.") var records = 4_000_000
        @Option(name: .customLong("batch-size"), help: "Records per batch.") var batchSize = 4096
        @Option(help: "Alternating rounds.") var rounds = 7
        @OptionGroup var plugins: PluginOptions

        func run() throws {
            let catalog = plugins.catalog()
            guard let noop = catalog.plugins["noop"] else {
                printError("sluice: the noop plugin was not found; build it (swift build) or pass --plugin-dir")
                throw ExitCode(1)
            }
            let batches = max(1, records / batchSize)
            let inputs = (0..<batches).map { b -> OwnedBatch in
                var builder = BatchBuilder(expectedCount: batchSize, expectedBytes: batchSize * 40)
                for i in 0..<batchSize { builder.append("record \(b) \(i) of a benchmark batch, some text") }
                return OwnedBatch(builder)
            }
            let log: PluginLogHandler = { _, _, _ in }
            let copy = try PluginInstance(plugin: noop, name: "copy", configJSON: #"{"mode":"copy"}"#, log: log)
            let pass = try PluginInstance(plugin: noop, name: "pass", configJSON: #"{"mode":"passthrough"}"#, log: log)
            let stages: [(String, any BatchTransform)] = [
                ("built-in copy stage", HostCopyTransform()),
                ("noop.so, mode copy", copy),
                ("noop.so, mode passthrough", pass),
            ]
            var samples = [[Double]](repeating: [], count: stages.count)
            for _ in 0..<rounds {
                for (index, stage) in stages.enumerated() {
                    let start = DispatchTime.now().uptimeNanoseconds
                    for input in inputs { _ = try stage.1.transform(input) }
                    let elapsed = DispatchTime.now().uptimeNanoseconds - start
                    samples[index].append(Double(elapsed) / Double(batches * batchSize))
                }
            }
            let medians = samples.map { $0.sorted()[$0.count / 2] }
            print("plugin boundary: \(batches) batches x \(batchSize) records, \(rounds) alternating rounds, median ns/record")
            for (index, stage) in stages.enumerated() {
                let ratio = medians[index] / medians[0]
                print(
                    stage.0.padding(toLength: 28, withPad: " ", startingAt: 0)
                        + String(format: "%8.2f ns/record   %5.3fx built-in", medians[index], ratio)
                )
            }
        }
    }
}

/// The noop plugin's copy loop, compiled into the host: the baseline for the boundary's cost.
final class HostCopyTransform: BatchTransform {
    func transform(_ input: OwnedBatch) throws -> OwnedBatch {
        let view = input.view
        var output = BatchBuilder(
            valueType: .bytes,
            timestamps: view.hasTimestamps,
            expectedCount: view.count,
            expectedBytes: Int(view.raw.value_data_len)
        )
        for i in 0..<view.count {
            output.append(view.value(at: i))
            if let t = view.timestamp(at: i) { output.setLastTimestamp(t) }
        }
        return OwnedBatch(output)
    }
}
