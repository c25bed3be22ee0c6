import SluiceHost
import Testing

/// The replay decision at a start, case by case.
struct StartDecisionTests {
    static let interval: Int64 = 100
    static func clock(_ batch: UInt64, at time: Int64) -> BatchClock {
        BatchClock(segments: [.init(batch: batch, timeMilliseconds: time, intervalMilliseconds: interval)])
    }
    static func commit(_ batch: UInt64, clock: BatchClock?) -> CommitRecord {
        CommitRecord(pipeline: "p", batch: batch, batchTimeMilliseconds: 1000 + Int64(batch) * interval, positions: [], state: [], clock: clock)
    }
    static func inflight(_ batch: UInt64, clock: BatchClock?) -> InflightRecord {
        InflightRecord(batch: batch, batchTimeMilliseconds: 1000 + Int64(batch) * interval, ranges: [.init(source: "s", partition: 0, from: 4, to: 6)], clock: clock)
    }
    static func decide(_ committed: CommitRecord?, _ inflight: InflightStatus, highest: UInt64?, lost: Bool = false, now: Int64 = 50_000)
        -> StartDecision
    {
        StartDecision.decide(committed: committed, lostCommits: lost, inflight: inflight, highestCommit: highest, now: now, interval: interval)
    }

    @Test func aFreshStoreStartsAtBatchZeroNow() {
        let decision = Self.decide(nil, .absent, highest: nil)
        #expect(decision.next == 0 && decision.firstNew == 0 && decision.replay == nil)
        #expect(decision.clock.time(of: 0) == 50_000)
        #expect(decision.notices.isEmpty)
    }

    /// A clean stop leaves the in-flight record of the batch it committed last.
    @Test func afterACleanStopTheNextBatchStartsANewSegment() {
        let decision = Self.decide(Self.commit(4, clock: Self.clock(0, at: 1000)), .intact(Self.inflight(4, clock: nil)), highest: 4)
        #expect(decision.next == 5 && decision.firstNew == 5 && decision.replay == nil)
        #expect(decision.clock.time(of: 4) == 1400, "committed batches keep their times")
        #expect(decision.clock.time(of: 5) == 50_000)
    }

    @Test func theBatchInFlightIsReplayedWithItsRangesAndTime() {
        let record = Self.inflight(5, clock: Self.clock(0, at: 1000))
        let decision = Self.decide(Self.commit(4, clock: Self.clock(0, at: 1000)), .intact(record), highest: 4)
        #expect(decision.replay == record)
        #expect(decision.firstNew == 6)
        #expect(decision.clock.time(of: 5) == 1500)
    }

    @Test func withoutAnInflightRecordTheBatchAfterTheNewestCommitMayHaveRun() {
        let decision = Self.decide(Self.commit(4, clock: Self.clock(0, at: 1000)), .absent, highest: 4)
        #expect(decision.next == 5 && decision.firstNew == 6 && decision.replay == nil)
        #expect(decision.clock.time(of: 5) == 1500, "batch 5 keeps the time it may have run under")
    }

    @Test func anInflightRecordOfACommittedBatchIsNotReplayed() {
        let decision = Self.decide(Self.commit(5, clock: Self.clock(0, at: 1000)), .intact(Self.inflight(5, clock: nil)), highest: 5)
        #expect(decision.replay == nil && decision.next == 6 && decision.firstNew == 6)
    }

    @Test func aDamagedInflightRecordRunsTheBatchesAfterTheCommitAgainUnderTheirFirstTimes() {
        let decision = Self.decide(Self.commit(3, clock: Self.clock(0, at: 1000)), .damaged("checksum mismatch"), highest: 4, lost: true)
        #expect(decision.replay == nil)
        #expect(decision.next == 4 && decision.firstNew == 6, "batches 4 and 5 may have run")
        #expect(decision.clock.time(of: 5) == 1500)
        #expect(decision.notices.count == 2)
        #expect(decision.notices[0].hasPrefix("warning: the record of the batch in flight is damaged: checksum mismatch"))
        #expect(decision.notices[1] == "batches 4...5 may have run before a record was lost: run again under the batch times first given")
    }

    @Test func recordsWithoutAClockGiveTheReplayItsRecordedTime() {
        let decision = Self.decide(Self.commit(4, clock: nil), .intact(Self.inflight(5, clock: nil)), highest: 4)
        #expect(decision.replay != nil)
        #expect(decision.clock.time(of: 5) == 1500)
    }

    @Test func noRecordGivingTheTimeOfAPossiblyRunBatchIsWarnedAbout() {
        let decision = Self.decide(nil, .damaged("truncated"), highest: nil)
        #expect(decision.firstNew == 0)
        #expect(decision.notices.last?.hasPrefix("warning: no intact record gives the time of batch 0") == true)
    }

    @Test func aClockSetBackNeverGivesTwoBatchesOneTime() {
        let decision = Self.decide(Self.commit(4, clock: Self.clock(0, at: 1000)), .intact(Self.inflight(4, clock: nil)), highest: 4, now: 900)
        #expect(decision.clock.time(of: 5) == 1500, "after the last time given, not at the wall clock")
        #expect(decision.scheduleAhead == 600)
        #expect(decision.notices == ["warning: the system clock is 500 ms behind the batch times already used; new batch times go on after them"])
    }
}
