import Dispatch
import Foundation
import SluiceCore
import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a run is bounded and shown.
public struct RunOptions: Sendable {
    /// Stop after this many batches (nil: run until stopped).
    public var maxBatches: Int?
    /// Stop after `idleBatches` consecutive batches without input.
    public var untilIdle = false
    public var idleBatches = 2
    public var progress: ProgressMode = .auto
    /// How long a graceful shutdown may take before the process exits anyway.
    public var shutdownTimeoutSeconds: Double = 30
    /// Tasks run at once; the number of cores by default.
    public var parallelism = ProcessInfo.processInfo.activeProcessorCount
    /// Drop saved operator state that no longer matches its stage (positions are kept).
    public var resetState = false
    /// The longest wait between attempts to write a checkpoint that failed.
    public var checkpointRetryMaxMilliseconds = 5_000

    public init() {}
}

/// Why a run ended.
public enum RunEnd: Sendable, Equatable {
    case batchLimit
    case idle
    case signal(Int32)
    case failed(String)
}

/// Runs a pipeline on the batch clock: batch N is due at t0 + N × interval; batches run strictly in order, each
/// planned, read, processed, written to the sinks and committed before the next starts.
///
/// Stopping: SIGINT or SIGTERM lets the batch in flight finish and commit, then the run returns; a second signal,
/// or the shutdown timeout, ends the process at once.
public final class PipelineRunner: @unchecked Sendable {  // `stop` is atomic; the rest is used by the run thread only
    private let pipeline: PipelineInstance
    private let executor: BatchExecutor
    private let checkpoints: CheckpointStore?
    private let options: RunOptions
    public let progress: ProgressReporter
    private let stopSignal = Atomic<Int32>(0)
    private let wake = NSCondition()
    private var signalSources: [any DispatchSourceSignal] = []

    /// The committed position of every source partition.
    public private(set) var positions: [PartitionKey: UInt64] = [:]

    public init(pipeline: PipelineInstance, options: RunOptions, progress: ProgressReporter, checkpoints: CheckpointStore? = nil) {
        self.pipeline = pipeline
        self.options = options
        self.progress = progress
        self.checkpoints = checkpoints
        executor = BatchExecutor(graph: pipeline.graph, parallelism: options.parallelism)
    }

    /// Installs SIGINT and SIGTERM handlers that request a graceful stop.
    public func installSignalHandlers() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in self?.requestStop(signal: signalNumber) }
            source.resume()
            signalSources.append(source)
        }
    }

    /// Asks the run to stop after the batch in flight. A second request ends the process at once.
    public func requestStop(signal number: Int32) {
        let (exchanged, _) = stopSignal.compareExchange(expected: 0, desired: number, ordering: .sequentiallyConsistent)
        if !exchanged {
            progress.message("sluice: second signal: exiting now; the batch in flight is not committed\n")
            _exit(130)
        }
        progress.message("sluice: stopping after the batch in flight (press Ctrl-C again to exit at once)\n")
        wake.lock()
        wake.broadcast()
        wake.unlock()
        let timeout = options.shutdownTimeoutSeconds
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [progress] in
            progress.message("sluice: graceful shutdown took longer than \(timeout) s: exiting\n")
            _exit(1)
        }
    }

    /// Runs until a bound, a signal or a failure ends it.
    public func run() -> RunEnd {
        let interval = Int64(pipeline.resolved.spec.batchIntervalMilliseconds)
        let start = Self.nowMilliseconds()
        var batchID: UInt64 = 0
        var replay: (plan: BatchPlan, info: BatchInfo)?
        do {
            (batchID, replay) = try recover()
        } catch {
            progress.finish("sluice: \(pipeline.resolved.spec.name): cannot start: \(error)")
            return .failed("\(error)")
        }
        let firstBatch = batchID
        var idle = 0
        var totalRecords = 0
        var end: RunEnd = .batchLimit
        if let limit = options.maxBatches, batchID >= UInt64(limit) {
            progress.finish("sluice: \(pipeline.resolved.spec.name): batch \(limit - 1) is already committed; nothing to do")
            return .batchLimit
        }
        while true {
            let due = replay?.info.timeMilliseconds ?? start + Int64(batchID - firstBatch) * interval
            if replay == nil && waitUntil(due) {
                end = .signal(stopSignal.load(ordering: .sequentiallyConsistent))
                break
            }
            let began = Self.nowPrecise()
            let info = replay?.info ?? BatchInfo(id: batchID, timeMilliseconds: due)
            let outcome: BatchOutcome
            let plan: BatchPlan
            do {
                plan = try replay?.plan ?? executor.plan(positions: positions)
                if replay != nil {
                    progress.message("sluice: replaying batch \(batchID), planned before the last stop\n")
                } else if let checkpoints {
                    try retrying("recording the plan of batch \(batchID)") { try checkpoints.writeInflight(inflight(plan, info)) }
                }
                replay = nil
                crashIfAsked("after-plan", batchID)
                progress.suspend()
                defer { progress.resume() }
                outcome = try executor.run(plan, info: info)
                crashIfAsked("after-sinks", batchID)
                positions.merge(plan.endPositions) { $1 }
                if let checkpoints {
                    let (record, states) = try checkpoint(info)
                    try retrying("committing batch \(batchID)") { try checkpoints.commit(record, states: states) }
                }
                crashIfAsked("after-commit", batchID)
                try executor.commitSources(plan)
            } catch {
                end = .failed("batch \(batchID) failed: \(error)")
                break
            }
            let finished = Self.nowPrecise()
            if outcome.discarded > 0, let reason = outcome.firstDiscardReason {
                progress.message("sluice: batch \(batchID): \(outcome.discarded) records discarded; first: \(reason)\n")
            }
            progress.batch(
                BatchReport(
                    id: batchID,
                    timeMilliseconds: due,
                    records: outcome.inputRecords,
                    schedulingDelayMilliseconds: max(0, began - Double(due)),
                    processingMilliseconds: finished - began,
                    totalDelayMilliseconds: max(0, finished - Double(due)),
                    discarded: outcome.discarded
                )
            )
            totalRecords += outcome.inputRecords
            batchID += 1
            if stopSignal.load(ordering: .sequentiallyConsistent) != 0 {
                end = .signal(stopSignal.load(ordering: .sequentiallyConsistent))
                break
            }
            if let limit = options.maxBatches, batchID >= UInt64(limit) {
                end = .batchLimit
                break
            }
            if options.untilIdle {
                idle = outcome.inputRecords == 0 ? idle + 1 : 0
                if idle >= options.idleBatches {
                    end = .idle
                    break
                }
            }
        }
        let seconds = Double(Self.nowMilliseconds() - start) / 1000
        let why: String
        switch end {
        case .batchLimit: why = "batch limit reached"
        case .idle: why = "no new input for \(options.idleBatches) batches"
        case .signal(let number): why = number == SIGTERM ? "SIGTERM" : "SIGINT"
        case .failed(let message): why = message
        }
        let rate = seconds > 0 ? Int(Double(totalRecords) / seconds) : 0
        progress.finish(
            "sluice: \(pipeline.resolved.spec.name): \(batchID - firstBatch) batches, \(totalRecords) records in "
                + String(format: "%.2f", seconds) + " s (\(rate) records/s); stopped: \(why)"
        )
        return end
    }

    /// Sleeps until `due` (milliseconds since the epoch); true when a stop was requested instead.
    private func waitUntil(_ due: Int64) -> Bool {
        wake.lock()
        defer { wake.unlock() }
        while true {
            if stopSignal.load(ordering: .sequentiallyConsistent) != 0 { return true }
            let now = Self.nowMilliseconds()
            if now >= due { return false }
            _ = wake.wait(until: Date(timeIntervalSince1970: Double(due) / 1000))
        }
    }

    /// Milliseconds since the epoch with sub-millisecond precision.
    static func nowPrecise() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) * 1000 + Double(now.tv_nsec) / 1_000_000
    }

    static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    // MARK: Checkpoints

    /// A test hook: `SLUICE_TEST_CRASH=POINT:BATCH` kills the process with SIGKILL at that point of that batch
    /// (`after-plan`: the plan is recorded, nothing read; `after-sinks`: every sink committed, the checkpoint not yet;
    /// `after-commit`: the checkpoint committed, the sources not yet told), so the crash tests can hit the narrow
    /// windows a random kill rarely does.
    private let crashPoint: (point: String, batch: UInt64)? = {
        guard let text = ProcessInfo.processInfo.environment["SLUICE_TEST_CRASH"] else { return nil }
        let parts = text.split(separator: ":")
        guard parts.count == 2, let batch = UInt64(parts[1]) else { return nil }
        return (String(parts[0]), batch)
    }()

    private func crashIfAsked(_ point: String, _ batch: UInt64) {
        if let crashPoint, crashPoint.point == point, crashPoint.batch == batch { kill(getpid(), SIGKILL) }
    }

    /// The operator stages that keep state across batches, by name.
    private var statefulStages: [(name: String, fingerprint: String, snapshot: () -> [UInt8], restore: ([UInt8]) throws -> Void)] {
        let graph = pipeline.graph
        return graph.nodes.indices.compactMap { index in
            switch graph.nodes[index] {
            case .keyed(let stage, _) where stage.isStateful:
                return (graph.names[index], stage.op.fingerprint, stage.snapshot, { try stage.restore($0) })
            case .collecting(let stage as WindowStage, _):
                return (graph.names[index], stage.fingerprint, stage.snapshot, { try stage.restore($0) })
            default:
                return nil
            }
        }
    }

    /// Loads the last commit: positions, operator state, and the batch to replay. Returns the next batch id.
    private func recover() throws -> (UInt64, (plan: BatchPlan, info: BatchInfo)?) {
        guard let checkpoints else { return (0, nil) }
        let graph = pipeline.graph
        let loaded = try checkpoints.loadLatest()
        for warning in loaded?.warnings ?? [] {
            progress.message("sluice: warning: skipping a damaged checkpoint: \(warning)\n")
        }
        var next: UInt64 = 0
        if let loaded {
            next = loaded.record.batch + 1
            for position in loaded.record.positions {
                guard let source = graph.index(of: position.source), case .source = graph.nodes[source] else { continue }
                positions[PartitionKey(source: source, partition: position.partition)] = position.offset
            }
            let saved = Dictionary(loaded.record.state.map { ($0.stage, $0) }, uniquingKeysWith: { a, _ in a })
            for stage in statefulStages {
                guard let entry = saved[stage.name], let bytes = loaded.states[stage.name] else { continue }
                guard entry.fingerprint == stage.fingerprint else {
                    if options.resetState {
                        progress.message("sluice: stage '\(stage.name)': dropping its saved state (--reset-state): it was \(entry.fingerprint), now \(stage.fingerprint)\n")
                        continue
                    }
                    throw CheckpointError(
                        "stage '\(stage.name)' has saved state for \(entry.fingerprint), but the pipeline now defines \(stage.fingerprint); "
                            + "the state cannot be used. Start with --reset-state to drop it (source positions are kept), "
                            + "or restore the stage's previous definition"
                    )
                }
                try stage.restore(bytes)
            }
            progress.message("sluice: resuming after batch \(loaded.record.batch) from \(checkpoints.directory)\n")
            try executor.announce(positions: positions)
            warnAboutPositionsOutsideSources()
        }
        if let inflight = checkpoints.loadInflight(), inflight.batch == next {
            var ranges: [BatchPlan.Range] = []
            for range in inflight.ranges {
                guard let source = graph.index(of: range.source), case .source = graph.nodes[source] else { continue }
                ranges.append(.init(key: PartitionKey(source: source, partition: range.partition), offsets: range.from..<range.to))
            }
            return (next, (BatchPlan(ranges: ranges), BatchInfo(id: next, timeMilliseconds: inflight.batchTimeMilliseconds)))
        }
        return (next, nil)
    }

    /// A committed position the source cannot serve means records are skipped or its own store was lost: say so
    /// once at the start instead of planning around it silently.
    private func warnAboutPositionsOutsideSources() {
        guard let offered = try? executor.available() else { return }
        let names = pipeline.graph.names
        for (key, position) in positions.sorted(by: { $0.key < $1.key }) {
            guard let range = offered[key] else { continue }
            let name = "source '\(names[key.source])' partition \(key.partition)"
            if position < range.lowerBound {
                progress.message(
                    "sluice: warning: \(name): committed position \(position) is before the earliest offset the source still holds "
                        + "(\(range.lowerBound)); \(range.lowerBound - position) records are skipped\n"
                )
            } else if position > range.upperBound {
                progress.message(
                    "sluice: warning: \(name): committed position \(position) is past what the source holds (up to \(range.upperBound)); "
                        + "its own stored state may be lost. It resumes once it reaches \(position); "
                        + "`sluice checkpoints set` moves the position\n"
                )
            }
        }
    }

    private func inflight(_ plan: BatchPlan, _ info: BatchInfo) -> InflightRecord {
        let names = pipeline.graph.names
        return InflightRecord(
            batch: info.id,
            batchTimeMilliseconds: info.timeMilliseconds,
            ranges: plan.ranges.map { .init(source: names[$0.key.source], partition: $0.key.partition, from: $0.offsets.lowerBound, to: $0.offsets.upperBound) }
        )
    }

    /// The commit record and state files of batch `info` (positions already advanced past it).
    private func checkpoint(_ info: BatchInfo) throws -> (CommitRecord, [String: [UInt8]]) {
        let names = pipeline.graph.names
        var states: [String: [UInt8]] = [:]
        var entries: [CommitRecord.State] = []
        for stage in statefulStages {
            states[stage.name] = stage.snapshot()
            entries.append(.init(stage: stage.name, fingerprint: stage.fingerprint, file: CheckpointStore.stateName(stage.name, info.id)))
        }
        let record = CommitRecord(
            pipeline: pipeline.resolved.spec.name,
            batch: info.id,
            batchTimeMilliseconds: info.timeMilliseconds,
            positions: positions.keys.sorted().map { .init(source: names[$0.source], partition: $0.partition, offset: positions[$0]!) },
            state: entries
        )
        return (record, states)
    }

    /// Runs `body` until it succeeds, reporting each failure and waiting longer each time (a full disk, a lost
    /// mount): nothing already committed is lost, and the pipeline goes on once the write works again.
    private func retrying(_ what: String, _ body: () throws -> Void) throws {
        var delay = 100
        while true {
            do {
                try body()
                return
            } catch {
                // A stop request ends the retries: nothing of this batch is committed, the next start replays it.
                if stopSignal.load(ordering: .sequentiallyConsistent) != 0 { throw error }
                progress.message("sluice: error: \(what): \(error); retrying in \(delay) ms\n")
                usleep(useconds_t(delay) * 1000)
                delay = min(delay * 2, options.checkpointRetryMaxMilliseconds)
            }
        }
    }
}
