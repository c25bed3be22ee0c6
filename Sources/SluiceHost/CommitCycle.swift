/// The commit protocol of one batch as a state machine: plan → record in flight → run (read, process, every sink
/// writes and commits) → store commit → sources acknowledge. The scheduler moves it one step at a time and refuses
/// any step out of order, so a change to the batch loop cannot skip recording the plan before reading, or tell the
/// sources before the store committed. After each step the scheduler tells its phase observer: that is where the
/// tests put their crash points.
public struct CommitCycle: Sendable, Equatable {
    /// The steps of a batch, in order. Each names what is true once it is reached.
    public enum Phase: String, Sendable, CaseIterable, Comparable {
        /// The ranges are decided (nothing durable yet).
        case planned
        /// The in-flight record is durable; nothing read.
        case recorded
        /// Read and processed; every sink wrote and committed the batch.
        case ran
        /// The store committed positions and state: the batch is done.
        case committed
        /// The sources were told they may forget what the batch read.
        case acknowledged

        public static func < (a: Phase, b: Phase) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// A step out of order.
    public struct OutOfOrder: Error, CustomStringConvertible, Sendable, Equatable {
        public var from: Phase?
        public var to: Phase
        public var description: String { "commit protocol: \(from?.rawValue ?? "start") cannot go to \(to.rawValue)" }
    }

    /// Whether the batch's progress is kept in a store (without one, nothing is recorded or committed).
    public let durable: Bool
    /// Whether the batch was recorded before this start (a replay): its in-flight record is already durable.
    public let replay: Bool
    public private(set) var phase: Phase?

    public init(durable: Bool, replay: Bool) {
        self.durable = durable
        self.replay = replay
    }

    /// The step that follows `phase`, or nil once the batch is acknowledged.
    public var nextPhase: Phase? {
        switch phase {
        case nil: .planned
        case .planned: durable && !replay ? .recorded : .ran
        case .recorded: .ran
        case .ran: durable ? .committed : .acknowledged
        case .committed: .acknowledged
        case .acknowledged: nil
        }
    }

    /// Moves to `next`, which must be the step that follows.
    public mutating func advance(to next: Phase) throws(OutOfOrder) {
        guard next == nextPhase else { throw OutOfOrder(from: phase, to: next) }
        phase = next
    }
}
