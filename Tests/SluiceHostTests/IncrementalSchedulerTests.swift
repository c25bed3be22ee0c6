import Foundation
import SluiceCore
import SluiceHost
import SluiceSDK
import Synchronization
import Testing

/// The scheduler with the directory store and incremental snapshots: it saves deltas between whole snapshots, a
/// restart goes on with the chain it restored, and a commit whose delta cannot be written is retried whole.
@Suite(.serialized)
struct IncrementalSchedulerTests {
    /// Keyed records (key, 1): batch n has 4 records, keys of 40, so that a batch touches a tenth of the state.
    final class KeyedLines: BatchSource {
        func partitionCount() throws -> Int { 1 }
        func available(partition: Int) throws -> Range<UInt64> { 0..<400 }
        func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
            var builder = BatchBuilder(valueType: .int64, keyed: true)
            for i in offsets {
                var key = "k\((i &* 7) % 40)"
                key.withUTF8 { builder.append(key: UnsafeRawBufferPointer($0), value: Int64(1)) }
            }
            return OwnedBatch(builder)
        }
        func commit(partition: Int, upTo offset: UInt64) throws {}
    }

    /// A file system that fails the next write of a `.delta` file when `failDelta` is set (and clears it).
    final class FailingDelta: CheckpointFileSystem {
        let failDelta = Atomic<Bool>(false)
        let local = LocalFileSystem()
        func writeAtomically(_ data: [UInt8], to path: String) throws {
            if path.hasSuffix(".delta"), failDelta.exchange(false, ordering: .relaxed) {
                throw CheckpointError("cannot write \(path): an injected failure")
            }
            try local.writeAtomically(data, to: path)
        }
        func read(_ path: String) -> [UInt8]? { local.read(path) }
        func list(_ directory: String) -> [String] { local.list(directory) }
        func remove(_ path: String) { local.remove(path) }
        func makeDirectory(_ path: String) throws { try local.makeDirectory(path) }
    }

    /// Runs updateStateByKey(sum) over `KeyedLines` until batch `batches - 1` is committed; the sink keeps every
    /// batch's output.
    static func run(
        store: (any ProgressStore)?, batches: Int, log: BatchLog, policy: IncrementalSnapshots = IncrementalSnapshots(),
        observer: (@Sendable (CommitCycle.Phase, UInt64) throws -> Void)? = nil
    ) -> RunSummary {
        var graph = StreamGraph()
        let input = graph.add("lines", .source(KeyedLines(), maxRecordsPerPartition: 4))
        let totals = graph.add("totals", .keyed(KeyedStage(KeyedOperator(.updateStateByKey, function: .sum), partitions: 2), inputs: [input]))
        graph.addSink(.init(name: "totals", sink: log, input: totals))
        var options = SchedulerOptions(pipeline: "totals", batchIntervalMilliseconds: 1)
        options.maxBatches = batches
        options.parallelism = 2
        options.checkpointRetryMaxMilliseconds = 10
        options.incrementalSnapshots = policy
        return PipelineScheduler(graph: graph, options: options, store: store, phaseObserver: observer).runBatches()
    }

    static func chain(_ directory: URL) throws -> CommitRecord.State {
        let store = try CheckpointStore(directory: directory.path)
        return try #require(try store.loadLatest()?.record.state.first)
    }

    @Test func aRestartGoesOnWithTheChainItRestored() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let reference = BatchLog()
        #expect(Self.run(store: nil, batches: 20, log: reference).end == .batchLimit)

        let log = BatchLog()
        // Each run opens the directory (and its lock) anew and closes it when the run is over.
        #expect(Self.run(store: try CheckpointStore(directory: directory.path), batches: 12, log: log).end == .batchLimit)
        let first = try Self.chain(directory)
        let deltas = try #require(first.deltas, "the first run saved deltas")
        #expect(deltas.last?.batch == 11 && deltas.count < 11, "a compaction happened within the first run: \(first)")

        #expect(Self.run(store: try CheckpointStore(directory: directory.path), batches: 20, log: log).end == .batchLimit)
        let second = try Self.chain(directory)
        let batches = second.deltas?.map(\.batch) ?? []
        #expect(batches.last == 19)
        #expect(log.batches == reference.batches, "the output of a run restarted from a chain is an uninterrupted run's")
        // Unless the second run compacted since, its chain starts in the first run.
        if second.file == first.file { #expect(batches.first == deltas.first?.batch, "\(second)") }
        #expect(second.file != first.file || batches.count > deltas.count)
    }

    @Test func aDeltaThatCannotBeWrittenIsRetriedAsWholeState() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let disk = FailingDelta()
        let log = BatchLog()
        let reference = BatchLog()
        #expect(Self.run(store: nil, batches: 8, log: reference).end == .batchLimit)
        let store = try CheckpointStore(directory: directory.path, fileSystem: disk)
        // Fail the delta of batch 4 once: armed when its sinks are done, just before its commit. (Compaction by
        // size is off: this state is small next to a delta's fixed header.)
        let summary = Self.run(store: store, batches: 8, log: log, policy: IncrementalSnapshots(maxDeltaFraction: 100)) { phase, batch in
            if phase == .ran && batch == 4 { disk.failDelta.store(true, ordering: .relaxed) }
        }
        #expect(summary.end == .batchLimit)
        let stillArmed = disk.failDelta.load(ordering: .relaxed)
        #expect(!stillArmed, "the delta write was attempted and failed")
        let loaded = try #require(try store.loadLatest())
        let entry = try #require(loaded.record.state.first)
        #expect(entry.file == "state/totals@4.state", "batch 4 was saved whole on the retry: \(entry)")
        #expect(entry.deltas?.map(\.batch) == [5, 6, 7], "and the chain goes on from it")
        #expect(log.batches == reference.batches)
    }
}

extension IncrementalSchedulerTests {
    /// The policy `state_snapshots:` (one line of YAML, on line 3 of the file) gives, or the one error it makes.
    static func policy(_ line: String) -> Result<IncrementalSnapshots?, PipelineError> {
        let yaml = "name: snapshots\nbatch_interval: 1s\n\(line)\nsources: {lines: {plugin: file-watch, config: {directory: /tmp}}}\n"
            + "sinks: {out: {from: lines, plugin: console}}\n"
        do {
            return .success(try PipelineParser.parse(text: yaml, file: "snapshots.yaml").stateSnapshots)
        } catch {
            #expect(error.errors.count == 1, "\(line): \(error.errors)")
            return .failure(error.errors[0])
        }
    }

    /// `state_snapshots:` in the pipeline file: deltas on by default, the compaction bounds, or off.
    @Test func thePipelineFileSetsTheSnapshotPolicy() throws {
        #expect(try Self.policy("").get() == IncrementalSnapshots(), "on by default")
        #expect(try Self.policy("state_snapshots: {}").get() == IncrementalSnapshots(maxDeltas: 50, maxDeltaFraction: 0.5))
        #expect(try Self.policy("state_snapshots: {max_deltas: 10, max_delta_fraction: 2}").get() == IncrementalSnapshots(maxDeltas: 10, maxDeltaFraction: 2))
        #expect(try Self.policy("state_snapshots: {incremental: false}").get() == nil)
        let wrong = [
            "state_snapshots: {max_deltas: 0}": "state_snapshots.max_deltas",
            "state_snapshots: {max_delta_fraction: 0}": "state_snapshots.max_delta_fraction",
            "state_snapshots: {incremantal: false}": "state_snapshots.incremantal",
            "state_snapshots: true": "state_snapshots",
        ]
        for (line, keyPath) in wrong {
            guard case .failure(let error) = Self.policy(line) else { Issue.record("\(line) was taken"); continue }
            #expect(error.keyPath == keyPath && error.line == 3, "\(line): \(error)")
        }
        if case .failure(let error) = Self.policy("state_snapshots: {incremantal: false}") {
            #expect(error.message.contains("did you mean 'incremental'?"), "\(error)")
        }
    }
}
