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
    private let options: RunOptions
    public let progress: ProgressReporter
    private let stopSignal = Atomic<Int32>(0)
    private let wake = NSCondition()
    private var signalSources: [any DispatchSourceSignal] = []

    /// The committed position of every source partition.
    public private(set) var positions: [PartitionKey: UInt64] = [:]

    public init(pipeline: PipelineInstance, options: RunOptions, progress: ProgressReporter) {
        self.pipeline = pipeline
        self.options = options
        self.progress = progress
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
        var idle = 0
        var totalRecords = 0
        var end: RunEnd = .batchLimit
        while true {
            let due = start + Int64(batchID) * interval
            if waitUntil(due) {
                end = .signal(stopSignal.load(ordering: .sequentiallyConsistent))
                break
            }
            let began = Self.nowPrecise()
            let info = BatchInfo(id: batchID, timeMilliseconds: due)
            let outcome: BatchOutcome
            let plan: BatchPlan
            do {
                plan = try executor.plan(positions: positions)
                progress.suspend()
                defer { progress.resume() }
                outcome = try executor.run(plan, info: info)
                try executor.commitSources(plan)
            } catch {
                end = .failed("batch \(batchID) failed: \(error)")
                break
            }
            positions.merge(plan.endPositions) { $1 }
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
            "sluice: \(pipeline.resolved.spec.name): \(batchID) batches, \(totalRecords) records in "
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
}
