/// The replay decision at a start, from what the progress store holds: which batch comes next, whether the batch in
/// flight runs again with its exact ranges, which batches may have run before (and so run again under the times of
/// their first attempts), and the batch clock of this run. A pure function of its inputs, so each case is unit-tested.
///
/// A batch that may have been run before keeps its id and time: the clock comes from the newest good commit (every
/// kept commit holds every segment any later batch was planned with), so falling back past a damaged commit or a
/// damaged in-flight record reproduces the times, and a sink that names its output by batch time overwrites the void
/// attempts. Which batches may have been run: up to the in-flight record's batch when it is intact; otherwise up to
/// one past the highest commit present, damaged or not (a batch is planned only once the one before it committed).
public struct StartDecision: Sendable, Equatable {
    /// The first batch to run.
    public var next: UInt64 = 0
    /// The in-flight record to run again exactly (same id, time and ranges), when it names `next`.
    public var replay: InflightRecord?
    public var clock = BatchClock()
    /// The first batch no earlier run can have planned; batches before it run again at once under the times the
    /// clock gives them (the times of their first attempts).
    public var firstNew: UInt64 = 0
    /// How far the new segment's first time is ahead of the wall clock (when the clock was set back).
    public var scheduleAhead: Int64 = 0
    /// What the start should say, in order (without the "sluice: " prefix).
    public var notices: [String] = []

    /// - Parameters:
    ///   - committed: the newest good commit, nil when there is none.
    ///   - lostCommits: whether newer commits were skipped as damaged.
    ///   - inflight, highestCommit: what the store says about the batch in flight and the commits present.
    ///   - now, interval: the wall clock and the batch interval, in milliseconds.
    public static func decide(
        committed: CommitRecord?,
        lostCommits: Bool,
        inflight: InflightStatus,
        highestCommit: UInt64?,
        now: Int64,
        interval: Int64
    ) -> StartDecision {
        var decision = StartDecision()
        let next = committed.map { $0.batch + 1 } ?? 0
        decision.next = next
        var clock = committed?.clock ?? BatchClock()
        // The highest batch that may have been planned before this start (nil: none after the last commit).
        var highestPlanned: UInt64?
        // Whether records were lost (a damaged commit or in-flight record), to say why batches run again.
        var lost = lostCommits
        switch inflight {
        case .absent:
            highestPlanned = highestCommit.map { $0 + 1 }
        case .damaged(let reason):
            highestPlanned = highestCommit.map { $0 + 1 } ?? 0
            lost = true
            decision.notices.append(
                "warning: the record of the batch in flight is damaged: \(reason); the batches after "
                    + (committed.map { "batch \($0.batch)" } ?? "the start") + " run again, each under the time the commits record for it"
            )
        case .intact(let record):
            highestPlanned = record.batch
            if clock.time(of: next) == nil, let recorded = record.clock { clock = recorded }
            if record.batch == next {
                // Written before Sluice kept the clock: the record's own time is the batch's identity.
                if clock.time(of: next) == nil {
                    clock.start(at: next, time: record.batchTimeMilliseconds, interval: interval)
                }
                decision.replay = record
            }
        }
        decision.firstNew = next
        if let highestPlanned, highestPlanned >= next {
            if clock.time(of: next) != nil {
                decision.firstNew = highestPlanned + 1
                if lost {
                    decision.notices.append(
                        "\(batches(next, highestPlanned)) may have run before a record was lost: run again under the batch times first given"
                    )
                }
            } else {
                decision.notices.append(
                    "warning: no intact record gives the time of \(batches(next, highestPlanned)), which may have been "
                        + "run before; new times are given, and a sink that names its output by batch time (files) keeps "
                        + "what the first attempt wrote"
                )
            }
        }
        // A new segment for the batches no run has planned, after every time already given: a wall clock set back
        // must never make two batches share a time.
        let previous = decision.firstNew > 0 ? clock.time(of: decision.firstNew - 1) : nil
        let first = max(now, previous.map { $0 &+ interval } ?? now)
        clock.start(at: decision.firstNew, time: first, interval: interval)
        decision.scheduleAhead = first - now
        if decision.scheduleAhead > interval {
            decision.notices.append(
                "warning: the system clock is \(decision.scheduleAhead - interval) ms behind the batch times already "
                    + "used; new batch times go on after them"
            )
        }
        decision.clock = clock
        return decision
    }

    /// "batch 4" or "batches 4...6".
    static func batches(_ first: UInt64, _ last: UInt64) -> String {
        first == last ? "batch \(first)" : "batches \(first)...\(last)"
    }
}
