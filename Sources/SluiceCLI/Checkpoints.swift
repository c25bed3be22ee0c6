import ArgumentParser
import Foundation
import SluiceHost

struct Checkpoints: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoints",
        abstract: "Inspect and repair a pipeline's checkpoint directory.",
        discussion: """
            A checkpoint directory holds the last committed batches of a pipeline: source positions (which survive \
            changes to the stages) and operator state (tagged with each stage's definition). These commands take \
            the directory's lock, so they refuse to touch a directory a running pipeline uses.
            """,
        subcommands: [Show.self, Reset.self, Set.self]
    )
}

extension Checkpoints {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show the committed positions and state, every kept commit, and the batch in flight."
        )

        @Argument(help: "The checkpoint directory.") var directory: String

        func run() throws {
            let store = try open(directory)
            let inflight = store.inflightStatus()
            let loaded: CheckpointStore.Loaded?
            do {
                loaded = try store.loadLatest()
            } catch {
                printError("sluice: \(error)")
                if case .damaged(let reason) = inflight { printError("sluice: the in-flight record is damaged too: \(reason)") }
                throw ExitCode(1)
            }
            guard let loaded else {
                print("\(directory): no commits (a pipeline using it starts from the beginning)")
                showInflight(inflight, after: nil)
                return
            }
            let record = loaded.record
            print("pipeline \(record.pipeline): batch \(record.batch) committed (batch time \(record.batchTimeMilliseconds) ms)")
            print("")
            printTable(header: ["SOURCE", "PARTITION", "NEXT OFFSET"], rows: record.positions.map { [$0.source, String($0.partition), String($0.offset)] })
            if !record.state.isEmpty {
                print("")
                // A stage saved incrementally has a base and deltas: both sizes, and the batch the base is from.
                printTable(
                    header: ["STAGE", "STATE BYTES", "DELTAS", "DEFINITION"],
                    rows: record.state.map { entry in
                        let deltas = loaded.deltas[entry.stage] ?? []
                        let base = entry.deltas?.first.map { " over batch \($0.base)" } ?? ""
                        return [
                            entry.stage, String(loaded.states[entry.stage]?.count ?? 0),
                            deltas.isEmpty ? "0" : "\(deltas.count) (\(deltas.reduce(0) { $0 + $1.count }) bytes)\(base)",
                            entry.fingerprint,
                        ]
                    }
                )
            }
            print("")
            print("commits kept:")
            for line in store.describeCommits() { print("  \(line)") }
            for warning in loaded.warnings { print("warning: \(warning)") }
            if let clock = record.clock {
                print("batch clock (batch N's time is the segment's time + (N - its first batch) x interval):")
                for line in clock.summary { print("  \(line)") }
            }
            showInflight(inflight, after: record.batch)
        }

        /// The batch in flight, or why its record cannot be used.
        private func showInflight(_ inflight: InflightStatus, after committed: UInt64?) {
            switch inflight {
            case .absent:
                break
            case .intact(let record):
                guard committed.map({ record.batch > $0 }) ?? true else { return }
                let ranges = record.ranges.map { "\($0.source)[\($0.partition)] \($0.from)..<\($0.to)" }.joined(separator: ", ")
                print("in flight: batch \(record.batch), replayed on the next start: \(ranges)")
            case .damaged(let reason):
                print("in flight: damaged: \(reason)")
                print(
                    "  the next start runs the batches after "
                        + (committed.map { "batch \($0)" } ?? "the start")
                        + " again, under the times the commits record for them"
                )
            }
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset",
            abstract: "Forget the commits: the next run starts from the beginning (or, with --state, keeps positions).",
            discussion: "Without --state this also removes what the sources keep for replay (write-ahead logs, file indexes)."
        )

        @Argument(help: "The checkpoint directory.") var directory: String

        @Flag(help: "Drop only the operator state; keep the source positions.") var state = false

        func run() throws {
            let store = try open(directory)
            if state {
                guard let loaded = try store.loadLatest() else {
                    print("\(directory): no commits; nothing to reset")
                    return
                }
                var record = loaded.record
                let dropped = record.state.map(\.stage)
                record.state = []
                try store.commit(record, states: [:])
                print("dropped the state of \(dropped.isEmpty ? "no stage" : dropped.joined(separator: ", ")); positions kept at batch \(record.batch)")
            } else {
                store.reset(sources: true)
                print("\(directory): reset; the next run starts from the beginning")
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set the next offset of one source partition (to skip ahead, or to read again).",
            discussion: "Writes a new commit record with the position changed; the batch in flight, if any, is dropped."
        )

        @Argument(help: "The checkpoint directory.") var directory: String
        @Argument(help: "The source's name in the pipeline.") var source: String
        @Argument(help: "The partition number.") var partition: Int
        @Argument(help: "The next offset to read.") var offset: UInt64

        func run() throws {
            let store = try open(directory)
            guard var record = try store.loadLatest()?.record else {
                printError("sluice: \(directory) has no commits; run the pipeline once first")
                throw ExitCode(1)
            }
            let old = record.positions.first { $0.source == source && $0.partition == partition }?.offset
            record.positions.removeAll { $0.source == source && $0.partition == partition }
            record.positions.append(.init(source: source, partition: partition, offset: offset))
            record.positions.sort { ($0.source, $0.partition) < ($1.source, $1.partition) }
            try store.commit(record, states: [:])
            store.dropInflight()
            print("\(source)[\(partition)]: next offset \(old.map(String.init) ?? "unset") -> \(offset)")
        }
    }
}

/// Opens a checkpoint directory that must exist.
private func open(_ directory: String) throws -> CheckpointStore {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        printError("sluice: \(directory): no such checkpoint directory")
        throw ExitCode(2)
    }
    do {
        return try CheckpointStore(directory: directory)
    } catch {
        printError("sluice: \(error)")
        throw ExitCode(1)
    }
}
