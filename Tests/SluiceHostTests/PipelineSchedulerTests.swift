import Foundation
import SluiceCore
import SluiceHost
import Synchronization
import Testing

/// The scheduler with an in-memory store: exactly-once output across a crash at every point of the commit protocol,
/// the replay of the batch in flight, leases, retries, listeners, and two schedulers in one process.
struct PipelineSchedulerTests {
    /// An uninterrupted run's output: the oracle for the runs with crashes.
    static let reference: (counts: [UInt64: [String]], lines: [UInt64: [String]]) = {
        let counts = BatchLog()
        let lines = BatchLog()
        _ = WindowedCounts.scheduler(store: InMemoryProgressStore(), counts: counts, lines: lines).runBatches()
        return (counts.batches, lines.batches)
    }()

    @Test func anUninterruptedRunCommitsEveryBatch() throws {
        #expect(Self.reference.lines.count == 6)
        #expect(Self.reference.lines[1] == Array(WindowedCounts.lines[3..<6]))
        let store = InMemoryProgressStore()
        let summary = WindowedCounts.scheduler(store: store, counts: BatchLog(), lines: BatchLog()).runBatches()
        #expect(summary.end == .batchLimit && summary.batches == 6 && summary.records == 18)
        let last = try #require(try store.loadLatest())
        #expect(last.record.batch == 5)
        #expect(last.record.positions == [.init(source: "lines", partition: 0, offset: 18)])
        #expect(last.record.state.map(\.stage) == ["window"])
    }

    static let crashPoints: [(CommitCycle.Phase, UInt64)] = CommitCycle.Phase.allCases.flatMap { phase in [(phase, UInt64(0)), (phase, UInt64(2))] }

    @Test(arguments: crashPoints)
    func aCrashAtEveryPointIsRecoveredWithExactOutput(phase: CommitCycle.Phase, batch: UInt64) throws {
        let store = InMemoryProgressStore()
        let counts = BatchLog()
        let lines = BatchLog()
        let crashed = WindowedCounts.scheduler(store: store, counts: counts, lines: lines, crashAt: (phase, batch)).runBatches()
        guard case .failed = crashed.end else { Issue.record("no crash: \(crashed.end)"); return }
        // What the crash left: the plan is durable from `recorded` on; the batch counts as done from `committed` on.
        let committed = try store.loadLatest()?.record.batch
        #expect(committed == (phase >= .committed ? batch : batch == 0 ? nil : batch - 1))
        if phase >= .recorded && phase < .committed, case .intact(let record) = store.inflightStatus() {
            #expect(record.batch == batch)
        } else if phase >= .recorded && phase < .committed {
            Issue.record("the plan of batch \(batch) is not recorded")
        }
        let notices = Notices()
        let resumed = WindowedCounts.scheduler(store: store, counts: counts, lines: lines, notices: notices).runBatches()
        #expect(resumed.end == .batchLimit)
        #expect(counts.batches == Self.reference.counts, "window state and positions survive the crash")
        #expect(lines.batches == Self.reference.lines)
        #expect(counts.timesAreStable && lines.timesAreStable, "a batch run again keeps its time")
        let replayed = notices.all.contains("replaying batch \(batch), planned before the last stop")
        #expect(replayed == (phase >= .recorded && phase < .committed), "\(notices.all)")
    }

    @Test func theRecordedRangesAreReplayedExactlyEvenWhenTheSourceOffersMore() throws {
        let store = InMemoryProgressStore()
        _ = WindowedCounts.scheduler(store: store, counts: BatchLog(), lines: BatchLog(), batches: 2).runBatches()
        let clock = try #require(try store.loadLatest()?.record.clock)
        // A batch planned with 2 records (the source had fewer then) and never committed.
        try store.writeInflight(
            InflightRecord(batch: 2, batchTimeMilliseconds: clock.time(of: 2)!, ranges: [.init(source: "lines", partition: 0, from: 6, to: 8)], clock: clock)
        )
        let lines = BatchLog()
        let listener = RecordingListener()
        _ = WindowedCounts.scheduler(store: store, counts: BatchLog(), lines: lines, batches: 4, listeners: [listener]).runBatches()
        #expect(lines.batches[2] == Array(WindowedCounts.lines[6..<8]))
        #expect(lines.batches[3] == Array(WindowedCounts.lines[8..<11]), "the next batch follows on from the replay")
        let first = listener.events.withLock { $0.first }
        guard case .started(let started) = first else { Issue.record("\(String(describing: first))"); return }
        #expect(started.isReplay && started.id == 2 && started.timeMilliseconds == clock.time(of: 2))
        #expect(started.ranges == [SourceRange(source: "lines", partition: 0, from: 6, to: 8)])
    }

    @Test func listenersSeeEveryBatchStartAndCompleteWithItsRanges() {
        let listener = RecordingListener()
        _ = WindowedCounts.scheduler(store: nil, counts: BatchLog(), lines: BatchLog(), batches: 2, listeners: [listener]).runBatches()
        let events = listener.events.withLock { $0 }
        #expect(events.count == 4)
        guard events.count == 4, case .started(let first) = events[0] else { return }
        #expect(first.id == 0 && !first.isReplay && first.pipeline == "windowed")
        #expect(events[1] == .completed(0, records: 3, ranges: [.init(source: "lines", partition: 0, from: 0, to: 3)]))
        #expect(events[3] == .completed(1, records: 3, ranges: [.init(source: "lines", partition: 0, from: 3, to: 6)]))
    }

    @Test func aFailedBatchIsReportedToListenersAndCommitsNothing() throws {
        let store = InMemoryProgressStore()
        let listener = RecordingListener()
        let summary = WindowedCounts.scheduler(store: store, counts: BatchLog(), lines: BatchLog(), listeners: [listener], crashAt: (.ran, 1))
            .runBatches()
        #expect(summary.end == .failed("batch 1 failed: Crash()"))
        #expect(listener.events.withLock { $0.last } == .failed(1))
        #expect(try store.loadLatest()?.record.batch == 0)
    }

    @Test func aCommitUnderALostLeaseIsRefusedAndNotRetried() throws {
        let store = InMemoryProgressStore()
        let scheduler = WindowedCounts.scheduler(store: store, counts: BatchLog(), lines: BatchLog(), crashAt: nil)
        let revoked = Mutex(false)
        let listener = RecordingListener()
        // Another owner takes over once batch 1 ran: its commit must fail, not wait for the lease to come back.
        let revoking = PipelineScheduler(
            graph: scheduler.graph, options: scheduler.options, store: store, listeners: [listener],
            phaseObserver: { phase, batch in
                if phase == .ran && batch == 1 && !revoked.withLock({ $0 }) {
                    revoked.withLock { $0 = true }
                    store.revokeLeases()
                }
            }
        )
        let summary = revoking.runBatches()
        guard case .failed(let message) = summary.end else { Issue.record("\(summary.end)"); return }
        #expect(message.contains("stale"))
        #expect(try store.loadLatest()?.record.batch == 0)
    }

    @Test func aFailedStoreWriteIsRetriedAndTheRunGoesOn() throws {
        let store = InMemoryProgressStore()
        store.contents.withLock { $0.failingWrites = 2 }
        let notices = Notices()
        let lines = BatchLog()
        let summary = WindowedCounts.scheduler(store: store, counts: BatchLog(), lines: lines, notices: notices).runBatches()
        #expect(summary.end == .batchLimit)
        #expect(lines.batches == Self.reference.lines)
        #expect(notices.all.filter { $0.hasPrefix("error: recording the plan of batch 0: ") }.count == 2, "\(notices.all)")
    }

    @Test func twoSchedulersRunInOneProcessAndStopIndependently() throws {
        let storeA = InMemoryProgressStore()
        let storeB = InMemoryProgressStore()
        let linesA = BatchLog()
        let linesB = BatchLog()
        let readAll = Milestone(batch: 5)
        let a = WindowedCounts.scheduler(store: storeA, counts: BatchLog(), lines: linesA, batches: nil, listeners: [readAll])
        let b = WindowedCounts.scheduler(store: storeB, counts: BatchLog(), lines: linesB, batches: 6)
        let summaryA = Mutex<RunSummary?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let summary = a.runBatches()
            summaryA.withLock { $0 = summary }
            done.signal()
        }.start()
        let summaryB = b.runBatches()
        #expect(summaryB.end == .batchLimit)
        #expect(linesB.batches == Self.reference.lines)
        // B reaching its bound stops nothing in A, which runs until asked (empty batches once its input is read).
        #expect(summaryA.withLock { $0 } == nil)
        #expect(readAll.reached.wait(timeout: .now() + 30) == .success)
        a.requestStop()
        #expect(done.wait(timeout: .now() + 30) == .success)
        let endA = try #require(summaryA.withLock { $0 })
        #expect(endA.end == .stopped)
        #expect(linesA.batches.filter { !$0.value.isEmpty } == Self.reference.lines)
        #expect(try storeB.loadLatest()?.record.batch == 5)
    }
}

/// Signals once batch `batch` completed.
final class Milestone: BatchListener {
    let batch: UInt64
    let reached = DispatchSemaphore(value: 0)
    init(batch: UInt64) { self.batch = batch }
    func batchCompleted(_ event: BatchCompleted) { if event.id == batch { reached.signal() } }
}
