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

/// Runs a pipeline on the batch clock: batch N is due at t0 + N × interval (t0 the start of the run, or the time a
/// durable `BatchClock` gives a batch planned before); batches run strictly in order, each planned, read, processed,
/// written to the sinks and committed before the next starts.
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
        let start = Self.nowMilliseconds()
        let recovery: Recovery
        do {
            recovery = try recover()
        } catch {
            progress.finish("sluice: \(pipeline.resolved.spec.name): cannot start: \(error)")
            return .failed("\(error)")
        }
        var batchID = recovery.next
        var replay = recovery.replay
        let clock = recovery.clock
        let firstBatch = batchID
        var idle = 0
        var totalRecords = 0
        var end: RunEnd = .batchLimit
        if let limit = options.maxBatches, batchID >= UInt64(limit) {
            progress.finish("sluice: \(pipeline.resolved.spec.name): batch \(limit - 1) is already committed; nothing to do")
            return .batchLimit
        }
        while true {
            // Batches planned before this start run at once, under the times they were first run with; new ones wait
            // for their turn. Their times may be ahead of the wall clock when it was set back (`recover`): the wait
            // follows this run's own schedule, so a clock set back never stalls the pipeline.
            let due = replay?.info.timeMilliseconds ?? clock.time(of: batchID) ?? start
            let scheduled = batchID < recovery.firstNew ? start : due - recovery.scheduleAhead
            if batchID >= recovery.firstNew && waitUntil(scheduled) {
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
                    try retrying("recording the plan of batch \(batchID)") {
                        try checkpoints.writeInflight(inflight(plan, info, clock))
                    }
                }
                replay = nil
                crashIfAsked("after-plan", batchID)
                progress.suspend()
                defer { progress.resume() }
                outcome = try executor.run(plan, info: info)
                crashIfAsked("after-sinks", batchID)
                positions.merge(plan.endPositions) { $1 }
                if let checkpoints {
                    let (record, states) = try checkpoint(info, clock)
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
                    schedulingDelayMilliseconds: max(0, began - Double(scheduled)),
                    processingMilliseconds: finished - began,
                    totalDelayMilliseconds: max(0, finished - Double(scheduled)),
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

    /// Where a run starts: the batch after the last good commit, the in-flight batch to replay exactly, and the
    /// batch clock.
    struct Recovery {
        var next: UInt64 = 0
        var replay: (plan: BatchPlan, info: BatchInfo)?
        var clock = BatchClock()
        /// The first batch no earlier run can have planned; batches before it are run again at once under the times
        /// the clock gives them (the times of their first attempts).
        var firstNew: UInt64 = 0
        /// How far the new segment's first time is ahead of the wall clock (when the clock was set back).
        var scheduleAhead: Int64 = 0
    }

    /// Loads the last commit (positions and operator state), decides which batches run again and with which times,
    /// and records the batch clock of this run in every kept commit before anything new is planned.
    ///
    /// A batch that may have been run before keeps its id and time: the clock comes from the newest good commit
    /// (every kept commit holds every segment any later batch was planned with), so falling back past a damaged
    /// commit or a damaged `inflight.ckpt` reproduces the times, and a sink that names its output by batch time
    /// overwrites the void attempts. Which batches may have been run: up to the in-flight record's batch when it is
    /// intact; otherwise up to one past the highest commit file present, damaged or not (a batch is planned only once
    /// the one before it has committed).
    private func recover() throws -> Recovery {
        let interval = Int64(pipeline.resolved.spec.batchIntervalMilliseconds)
        let now = Self.nowMilliseconds()
        var recovery = Recovery()
        guard let checkpoints else {
            recovery.clock.start(at: 0, time: now, interval: interval)
            return recovery
        }
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
        recovery.next = next
        var clock = loaded?.record.clock ?? BatchClock()
        // The highest batch that may have been planned before this start (nil: none after the last commit).
        var highestPlanned: UInt64?
        // Whether records were lost (a damaged commit or in-flight record), to say why batches run again.
        var lost = !(loaded?.warnings.isEmpty ?? true)
        switch checkpoints.inflightStatus() {
        case .absent:
            highestPlanned = checkpoints.highestCommitBatch().map { $0 + 1 }
        case .damaged(let reason):
            highestPlanned = checkpoints.highestCommitBatch().map { $0 + 1 } ?? 0
            lost = true
            progress.message(
                "sluice: warning: the record of the batch in flight is damaged: \(reason); the batches after "
                    + (loaded.map { "batch \($0.record.batch)" } ?? "the start") + " run again, each under the time the commits record for it\n"
            )
        case .intact(let inflight):
            highestPlanned = inflight.batch
            if clock.time(of: next) == nil, let recorded = inflight.clock { clock = recorded }
            if inflight.batch == next {
                // Written before Sluice kept the clock: the record's own time is the batch's identity.
                if clock.time(of: next) == nil {
                    clock.start(at: next, time: inflight.batchTimeMilliseconds, interval: interval)
                }
                var ranges: [BatchPlan.Range] = []
                for range in inflight.ranges {
                    guard let source = graph.index(of: range.source), case .source = graph.nodes[source] else { continue }
                    ranges.append(.init(key: PartitionKey(source: source, partition: range.partition), offsets: range.from..<range.to))
                }
                recovery.replay = (BatchPlan(ranges: ranges), BatchInfo(id: next, timeMilliseconds: inflight.batchTimeMilliseconds))
            }
        }
        recovery.firstNew = next
        if let highestPlanned, highestPlanned >= next {
            if clock.time(of: next) != nil {
                recovery.firstNew = highestPlanned + 1
                if lost {
                    progress.message(
                        "sluice: \(Self.batches(next, highestPlanned)) may have run before a record was lost: "
                            + "run again under the batch times first given\n"
                    )
                }
            } else {
                progress.message(
                    "sluice: warning: no intact record gives the time of \(Self.batches(next, highestPlanned)), which may have been "
                        + "run before; new times are given, and a sink that names its output by batch time (files) keeps "
                        + "what the first attempt wrote\n"
                )
            }
        }
        // A new segment for the batches no run has planned, after every time already given: a wall clock set back
        // must never make two batches share a time.
        let previous = recovery.firstNew > 0 ? clock.time(of: recovery.firstNew - 1) : nil
        let first = max(now, previous.map { $0 &+ interval } ?? now)
        clock.start(at: recovery.firstNew, time: first, interval: interval)
        recovery.scheduleAhead = first - now
        if recovery.scheduleAhead > interval {
            progress.message(
                "sluice: warning: the system clock is \(recovery.scheduleAhead - interval) ms behind the batch times already "
                    + "used; new batch times go on after them\n"
            )
        }
        recovery.clock = clock
        try retrying("recording the batch clock") { try checkpoints.recordClock(clock) }
        return recovery
    }

    /// "batch 4" or "batches 4...6".
    static func batches(_ first: UInt64, _ last: UInt64) -> String {
        first == last ? "batch \(first)" : "batches \(first)...\(last)"
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

    private func inflight(_ plan: BatchPlan, _ info: BatchInfo, _ clock: BatchClock) -> InflightRecord {
        let names = pipeline.graph.names
        return InflightRecord(
            batch: info.id,
            batchTimeMilliseconds: info.timeMilliseconds,
            ranges: plan.ranges.map { .init(source: names[$0.key.source], partition: $0.key.partition, from: $0.offsets.lowerBound, to: $0.offsets.upperBound) },
            clock: clock.from(info.id)
        )
    }

    /// The commit record and state files of batch `info` (positions already advanced past it).
    private func checkpoint(_ info: BatchInfo, _ clock: BatchClock) throws -> (CommitRecord, [String: [UInt8]]) {
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
            state: entries,
            clock: clock.from(info.id)
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
