import Dispatch
import Foundation
import Logging
import SluiceCore
import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a scheduler runs and is bounded.
public struct SchedulerOptions: Sendable {
    /// The pipeline's name, in events and commit records.
    public var pipeline: String
    public var batchIntervalMilliseconds: Int
    /// Stop once batch `maxBatches - 1` is committed, counting across restarts (nil: run until stopped).
    public var maxBatches: Int?
    /// Stop after `idleBatches` consecutive batches without input.
    public var untilIdle = false
    public var idleBatches = 2
    /// Tasks run at once; the number of cores by default.
    public var parallelism = ProcessInfo.processInfo.activeProcessorCount
    /// Drop saved operator state that no longer matches its stage (positions are kept).
    public var resetState = false
    /// The longest wait between attempts to write progress that failed.
    public var checkpointRetryMaxMilliseconds = 5_000
    /// Spark's backpressure: a PID estimator limits the records per second the next batches take (nil: off).
    public var backpressure: BackpressureConfiguration?
    /// When a commit saves only what changed in a stage's state (nil: every commit saves all of it).
    public var incrementalSnapshots: IncrementalSnapshots? = IncrementalSnapshots()

    public init(pipeline: String, batchIntervalMilliseconds: Int) {
        self.pipeline = pipeline
        self.batchIntervalMilliseconds = batchIntervalMilliseconds
    }
}

/// Why a run ended.
public enum RunEnd: Sendable, Equatable {
    case batchLimit
    case idle
    /// `requestStop` was called.
    case stopped
    case failed(String)
    /// The progress store could not be loaded or did not fit the pipeline: nothing ran.
    case couldNotStart(String)
    /// The batch limit was already committed by an earlier run: nothing ran.
    case nothingToDo(lastCommitted: UInt64)
}

/// What a run did.
public struct RunSummary: Sendable, Equatable {
    public var end: RunEnd
    /// The first batch this run planned or replayed.
    public var firstBatch: UInt64
    public var batches: Int
    public var records: Int
    public var discarded: Int
    public var seconds: Double
}

/// Runs a `StreamGraph` on the batch clock until a bound, a failure or `requestStop` ends it: batch N is due at the
/// time the durable `BatchClock` gives it; batches run strictly in order, each through the commit protocol
/// (`CommitCycle`) before the next starts. With a `ProgressStore` a run resumes after the last commit, replays the
/// batch in flight and keeps every batch's identity (`StartDecision`); without one it starts from the sources'
/// earliest offsets.
///
/// A library type: it installs no signal handler, never exits the process and keeps no global state, so several run
/// in one process. The caller decides when to stop (`requestStop`, or graceful shutdown as a `Service`). Batch
/// figures leave as events to `BatchListener`s; what the start and the retries have to say goes to `logger` (the
/// caller's: a library never bootstraps the logging system).
public final class PipelineScheduler: @unchecked Sendable {  // `stopRequested` is atomic; the rest belongs to the run thread
    public let graph: StreamGraph
    public let options: SchedulerOptions
    private let store: (any ProgressStore)?
    private let executor: BatchExecutor
    private let listeners: [any BatchListener]
    /// Backpressure's estimator and caps, when the options ask for it.
    public let rateController: RateController?
    private let logger: Logger
    private let phaseObserver: (@Sendable (CommitCycle.Phase, UInt64) throws -> Void)?
    private let stopRequested = Atomic<Bool>(false)
    private let wake = NSCondition()

    /// The committed position of every source partition.
    public private(set) var positions: [PartitionKey: UInt64] = [:]
    /// Each stateful stage's chain of saved state since its last whole snapshot: the one restored at the start,
    /// then as this run committed it.
    private var chains: [String: IncrementalSnapshots.Chain] = [:]

    /// - Parameters:
    ///   - store: where progress is kept; nil runs without checkpoints.
    ///   - logger: what the start and the retries have to say (warnings and errors at those levels); by default
    ///     nowhere.
    ///   - phaseObserver: called after each step of the commit protocol of each batch; an error it throws fails the
    ///     batch at that point, leaving the store as a crash there would (the tests' crash points).
    public init(
        graph: StreamGraph,
        options: SchedulerOptions,
        store: (any ProgressStore)? = nil,
        listeners: [any BatchListener] = [],
        logger: Logger = Logger(label: "scheduler") { _ in SwiftLogNoOpLogHandler() },
        phaseObserver: (@Sendable (CommitCycle.Phase, UInt64) throws -> Void)? = nil
    ) {
        self.graph = graph
        self.options = options
        self.store = store
        rateController = options.backpressure.map { RateController($0, batchIntervalMilliseconds: options.batchIntervalMilliseconds) }
        // The estimator hears every completed batch first, so the next plan uses the newest rate.
        self.listeners = (rateController.map { [$0] } ?? []) + listeners
        self.logger = logger
        self.phaseObserver = phaseObserver
        executor = BatchExecutor(graph: graph, parallelism: options.parallelism)
    }

    /// Asks the run to stop after the batch in flight (which finishes and commits). Safe from any thread.
    public func requestStop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        wake.lock()
        wake.broadcast()
        wake.unlock()
    }

    public var isStopRequested: Bool { stopRequested.load(ordering: .sequentiallyConsistent) }

    /// Runs batches on the calling thread until a bound, a failure or a stop request ends the run.
    public func runBatches() -> RunSummary {
        let start = Self.nowMilliseconds()
        var summary = RunSummary(end: .batchLimit, firstBatch: 0, batches: 0, records: 0, discarded: 0, seconds: 0)
        let lease: ProgressLease?
        let decision: StartDecision
        do {
            lease = try store?.acquireLease(owner: options.pipeline)
            decision = try recover(now: start)
        } catch {
            summary.end = .couldNotStart("\(error)")
            return summary
        }
        var batchID = decision.next
        var replay = decision.replay
        let clock = decision.clock
        summary.firstBatch = batchID
        if let limit = options.maxBatches, batchID >= UInt64(limit) {
            summary.end = .nothingToDo(lastCommitted: UInt64(limit - 1))
            return summary
        }
        var idle = 0
        while true {
            // Batches planned before this start run at once, under the times they were first run with; new ones wait
            // for their turn. Their times may be ahead of the wall clock when it was set back (`StartDecision`): the
            // wait follows this run's own schedule, so a clock set back never stalls the pipeline.
            let due = replay?.batchTimeMilliseconds ?? clock.time(of: batchID) ?? start
            let scheduled = batchID < decision.firstNew ? start : due - decision.scheduleAhead
            if batchID >= decision.firstNew && waitUntil(scheduled) {
                summary.end = .stopped
                break
            }
            let began = Self.nowPrecise()
            let info = BatchInfo(id: batchID, timeMilliseconds: due)
            var cycle = CommitCycle(durable: store != nil, replay: replay != nil)
            var ranges: [SourceRange] = []
            // What the sources offered, kept for the partitions' lag; a replay does not ask.
            var offered: [PartitionKey: Range<UInt64>] = [:]
            do {
                // The limit this batch is planned under (backpressure), reported with it.
                let rateLimit = replay == nil ? rateController?.rate : nil
                let plan: BatchPlan
                if let replay {
                    plan = self.plan(of: replay)
                } else {
                    offered = try executor.available()
                    let caps = rateController?.caps(available: offered, positions: positions) ?? [:]
                    plan = executor.plan(available: offered, positions: positions, caps: caps)
                }
                ranges = sourceRanges(plan)
                try step(&cycle, .planned, batchID)
                if replay != nil {
                    logger.info("replaying batch \(batchID), planned before the last stop")
                } else if let store {
                    try retrying("recording the plan of batch \(batchID)") {
                        try store.writeInflight(inflight(plan, info, clock))
                    }
                    try step(&cycle, .recorded, batchID)
                }
                replay = nil
                let started = BatchStarted(
                    pipeline: options.pipeline, id: batchID, timeMilliseconds: due, ranges: ranges,
                    isReplay: cycle.replay, schedulingDelayMilliseconds: max(0, began - Double(scheduled))
                )
                for listener in listeners { listener.batchStarted(started) }
                let outcome = try executor.run(plan, info: info)
                try step(&cycle, .ran, batchID)
                positions.merge(plan.endPositions) { $1 }
                if let store, let lease {
                    var (record, snapshots) = checkpoint(info, clock)
                    try retrying("committing batch \(batchID)") {
                        do {
                            try store.commit(record, snapshots: snapshots, lease: lease)
                        } catch {
                            // A delta needs its base commit intact; the retry saves whole state, which needs nothing.
                            snapshots = wholeSnapshots(replacingDeltasIn: snapshots)
                            throw error
                        }
                    }
                    for snapshot in snapshots {
                        chains[snapshot.stage] = IncrementalSnapshots.chain(chains[snapshot.stage], after: snapshot, batch: batchID)
                    }
                    try step(&cycle, .committed, batchID)
                }
                try executor.commitSources(plan)
                try step(&cycle, .acknowledged, batchID)
                let finished = Self.nowPrecise()
                let completed = BatchCompleted(
                    pipeline: options.pipeline, id: batchID, timeMilliseconds: due, ranges: ranges,
                    records: outcome.inputRecords,
                    schedulingDelayMilliseconds: max(0, began - Double(scheduled)),
                    processingMilliseconds: finished - began,
                    totalDelayMilliseconds: max(0, finished - Double(scheduled)),
                    discarded: outcome.discarded, firstDiscardReason: outcome.firstDiscardReason,
                    stages: outcome.stages, backlog: backlog(offered), states: stateSizes(), rateLimit: rateLimit,
                    incidents: executor.takeIncidents()
                )
                for listener in listeners { listener.batchCompleted(completed) }
                summary.batches += 1
                summary.records += outcome.inputRecords
                summary.discarded += outcome.discarded
                idle = outcome.inputRecords == 0 ? idle + 1 : 0
            } catch {
                let message = "batch \(batchID) failed: \(error)"
                let failed = BatchFailed(
                    pipeline: options.pipeline, id: batchID, timeMilliseconds: due, ranges: ranges, error: "\(error)",
                    incidents: executor.takeIncidents()
                )
                for listener in listeners { listener.batchFailed(failed) }
                summary.end = .failed(message)
                break
            }
            batchID += 1
            if isStopRequested {
                summary.end = .stopped
                break
            }
            if let limit = options.maxBatches, batchID >= UInt64(limit) {
                summary.end = .batchLimit
                break
            }
            if options.untilIdle && idle >= options.idleBatches {
                summary.end = .idle
                break
            }
        }
        summary.seconds = Double(Self.nowMilliseconds() - start) / 1000
        return summary
    }

    /// Moves the batch's commit protocol on and tells the phase observer.
    private func step(_ cycle: inout CommitCycle, _ phase: CommitCycle.Phase, _ batch: UInt64) throws {
        try cycle.advance(to: phase)
        try phaseObserver?(phase, batch)
    }

    /// Sleeps until `due` (milliseconds since the epoch); true when a stop was requested instead.
    private func waitUntil(_ due: Int64) -> Bool {
        wake.lock()
        defer { wake.unlock() }
        while true {
            if isStopRequested { return true }
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

    // MARK: Starting

    /// Loads the last commit (positions and operator state), decides which batches run again and with which times,
    /// and records the batch clock of this run in every kept commit before anything new is planned.
    private func recover(now: Int64) throws -> StartDecision {
        let interval = Int64(options.batchIntervalMilliseconds)
        guard let store else {
            return StartDecision.decide(committed: nil, lostCommits: false, inflight: .absent, highestCommit: nil, now: now, interval: interval)
        }
        chains = [:]
        let loaded = try store.loadLatest()
        for warning in loaded?.warnings ?? [] { logger.warning("skipping a damaged checkpoint: \(warning)") }
        if let loaded {
            for position in loaded.record.positions {
                guard let source = graph.index(of: position.source), case .source = graph.nodes[source] else { continue }
                positions[PartitionKey(source: source, partition: position.partition)] = position.offset
            }
            try restoreState(loaded)
            logger.info("resuming after batch \(loaded.record.batch) from \(store.location)")
            try executor.announce(positions: positions)
            warnAboutPositionsOutsideSources()
        }
        let decision = StartDecision.decide(
            committed: loaded?.record,
            lostCommits: !(loaded?.warnings.isEmpty ?? true),
            inflight: store.inflightStatus(),
            highestCommit: store.highestCommitBatch(),
            now: now,
            interval: interval
        )
        for line in decision.notices {
            // The decision's notices name their severity in words; the logger takes it as a level.
            if line.hasPrefix("warning: ") {
                logger.warning("\(line.dropFirst("warning: ".count))")
            } else {
                logger.info("\(line)")
            }
        }
        try retrying("recording the batch clock") { try store.recordClock(decision.clock) }
        return decision
    }

    /// Restores each stateful stage whose saved state was made under its current definition; refuses to start on a
    /// changed definition unless asked to drop the state.
    private func restoreState(_ loaded: LoadedCommit) throws {
        let saved = Dictionary(loaded.record.state.map { ($0.stage, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, stage) in graph.statefulStages {
            guard let entry = saved[name], let bytes = loaded.states[name] else { continue }
            guard entry.fingerprint == stage.fingerprint else {
                if options.resetState {
                    logger.notice("stage '\(name)': dropping its saved state (--reset-state): it was \(entry.fingerprint), now \(stage.fingerprint)")
                    continue
                }
                throw CheckpointError(
                    "stage '\(name)' has saved state for \(entry.fingerprint), but the pipeline now defines \(stage.fingerprint); "
                        + "the state cannot be used. Start with --reset-state to drop it (source positions are kept), "
                        + "or restore the stage's previous definition"
                )
            }
            try stage.restore(bytes)
            let deltas = loaded.deltas[name] ?? []
            for delta in deltas { try stage.applyDelta(delta) }
            // The stage tells its changes from the restored state on, so the next commit can go on with the chain.
            chains[name] = .init(
                batch: loaded.record.batch, fullBytes: bytes.count, deltaBytes: deltas.reduce(0) { $0 + $1.count }, deltas: deltas.count
            )
        }
    }

    /// A committed position the source cannot serve means records are skipped or its own store was lost: say so
    /// once at the start instead of planning around it silently.
    private func warnAboutPositionsOutsideSources() {
        guard let offered = try? executor.available() else { return }
        let names = graph.names
        for (key, position) in positions.sorted(by: { $0.key < $1.key }) {
            guard let range = offered[key] else { continue }
            let name = "source '\(names[key.source])' partition \(key.partition)"
            if position < range.lowerBound {
                logger.warning(
                    """
                    \(name): committed position \(position) is before the earliest offset the source still holds \
                    (\(range.lowerBound)); \(range.lowerBound - position) records are skipped
                    """
                )
            } else if position > range.upperBound {
                logger.warning(
                    """
                    \(name): committed position \(position) is past what the source holds (up to \(range.upperBound)); \
                    its own stored state may be lost. It resumes once it reaches \(position); \
                    `sluice checkpoints set` moves the position
                    """
                )
            }
        }
    }

    // MARK: Records

    /// The plan an in-flight record gives (ranges of sources no longer in the graph are left out).
    private func plan(of record: InflightRecord) -> BatchPlan {
        BatchPlan(ranges: record.ranges.compactMap { range in
            guard let source = graph.index(of: range.source), case .source = graph.nodes[source] else { return nil }
            return .init(key: PartitionKey(source: source, partition: range.partition), offsets: range.from..<range.to)
        })
    }

    private func sourceRanges(_ plan: BatchPlan) -> [SourceRange] {
        plan.ranges.map {
            SourceRange(source: graph.names[$0.key.source], partition: $0.key.partition, from: $0.offsets.lowerBound, to: $0.offsets.upperBound)
        }
    }

    /// Each offered partition's lag once the batch committed: from where its next batch starts (as the planner
    /// decides it) to the end of what the source offered.
    private func backlog(_ offered: [PartitionKey: Range<UInt64>]) -> [PartitionBacklog] {
        offered.keys.sorted().map { key in
            let range = offered[key]!
            return PartitionBacklog(
                source: graph.names[key.source], partition: key.partition,
                position: max(positions[key] ?? range.lowerBound, range.lowerBound), availableEnd: range.upperBound
            )
        }
    }

    /// What each stateful stage holds now.
    private func stateSizes() -> [StageState] {
        graph.statefulStages.map { StageState(stage: $0.name, keys: $0.stage.stateKeys, bytes: $0.stage.stateBytes) }
    }

    private func inflight(_ plan: BatchPlan, _ info: BatchInfo, _ clock: BatchClock) -> InflightRecord {
        InflightRecord(
            batch: info.id,
            batchTimeMilliseconds: info.timeMilliseconds,
            ranges: sourceRanges(plan),
            clock: clock.from(info.id)
        )
    }

    /// The commit record and state snapshots of batch `info` (positions already advanced past it).
    private func checkpoint(_ info: BatchInfo, _ clock: BatchClock) -> (CommitRecord, [StageSnapshot]) {
        let names = graph.names
        let deltas = store?.keepsDeltas == true ? options.incrementalSnapshots : nil
        let snapshots = graph.statefulStages.map { name, stage in
            let chain = chains[name]
            let taken = stage.checkpointSnapshot(delta: deltas?.allowsDelta(after: chain) ?? false)
            precondition(!taken.isDelta || chain != nil, "stage '\(name)' saved a delta it was not asked for")
            return StageSnapshot(stage: name, fingerprint: stage.fingerprint, bytes: taken.bytes, base: taken.isDelta ? chain?.batch : nil)
        }
        let record = CommitRecord(
            pipeline: options.pipeline,
            batch: info.id,
            batchTimeMilliseconds: info.timeMilliseconds,
            positions: positions.keys.sorted().map { .init(source: names[$0.source], partition: $0.partition, offset: positions[$0]!) },
            state: [],
            clock: clock.from(info.id)
        )
        return (record, snapshots)
    }

    /// `snapshots` with each delta replaced by the stage's whole state (unchanged since the delta was taken).
    private func wholeSnapshots(replacingDeltasIn snapshots: [StageSnapshot]) -> [StageSnapshot] {
        let stages = Dictionary(graph.statefulStages.map { ($0.name, $0.stage) }, uniquingKeysWith: { a, _ in a })
        return snapshots.map { snapshot in
            guard snapshot.base != nil, let stage = stages[snapshot.stage] else { return snapshot }
            return StageSnapshot(stage: snapshot.stage, fingerprint: snapshot.fingerprint, bytes: stage.snapshot())
        }
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
                // A stop request ends the retries: nothing of this batch is committed, the next start replays it. A
                // lost lease never comes back by waiting.
                if isStopRequested || error is LeaseLost { throw error }
                logger.error("\(what): \(error); retrying in \(delay) ms")
                wake.lock()
                _ = wake.wait(until: Date().addingTimeInterval(Double(delay) / 1000))
                wake.unlock()
                delay = min(delay * 2, options.checkpointRetryMaxMilliseconds)
            }
        }
    }
}
