import SluiceHost
import Testing

/// The commit protocol's transitions: each step follows the one before, and no step can be skipped or repeated.
struct CommitCycleTests {
    static func sequence(durable: Bool, replay: Bool) -> [CommitCycle.Phase] {
        var cycle = CommitCycle(durable: durable, replay: replay)
        var phases: [CommitCycle.Phase] = []
        while let next = cycle.nextPhase {
            phases.append(next)
            try? cycle.advance(to: next)
        }
        return phases
    }

    @Test func aDurableBatchRecordsItsPlanBeforeRunningAndCommitsBeforeTellingTheSources() {
        #expect(Self.sequence(durable: true, replay: false) == [.planned, .recorded, .ran, .committed, .acknowledged])
    }

    @Test func aReplayedBatchIsAlreadyRecorded() {
        #expect(Self.sequence(durable: true, replay: true) == [.planned, .ran, .committed, .acknowledged])
    }

    @Test func withoutAStoreNothingIsRecordedOrCommitted() {
        #expect(Self.sequence(durable: false, replay: false) == [.planned, .ran, .acknowledged])
    }

    @Test(arguments: [(true, false), (true, true), (false, false)])
    func everyStepOutOfOrderIsRefused(durable: Bool, replay: Bool) throws {
        let legal = Self.sequence(durable: durable, replay: replay)
        // From the start and from every phase, only the next legal step is accepted.
        for reached in 0...legal.count {
            var cycle = CommitCycle(durable: durable, replay: replay)
            for phase in legal.prefix(reached) { try cycle.advance(to: phase) }
            for phase in CommitCycle.Phase.allCases where reached == legal.count || phase != legal[reached] {
                var copy = cycle
                #expect(throws: CommitCycle.OutOfOrder.self, "\(legal.prefix(reached)) then \(phase)") { try copy.advance(to: phase) }
                #expect(copy == cycle, "a refused step changes nothing")
            }
            if reached < legal.count {
                try cycle.advance(to: legal[reached])
                #expect(cycle.phase == legal[reached])
            } else {
                #expect(cycle.nextPhase == nil)
            }
        }
    }
}
