import Foundation
import Synchronization

/// Faults the tests inject: refuse work with `com.microsoft:server-busy`, stop delivering for a while, steal
/// partitions. (Dropping every connection is `EventHubsEmulator.dropConnections()`.)
public final class EmulatorFaults: Sendable {
    struct State {
        var serverBusy = 0
        var stalledUntil: Date?
        var refusalDelay: Double = 0
    }

    let state = Mutex(State())

    public init() {}

    /// The next `count` link attaches, token puts and management requests are answered with server-busy.
    public func serverBusy(count: Int) { state.withLock { $0.serverBusy = count } }

    /// No event is delivered for `seconds`; connections stay open.
    public func stall(seconds: Double) { state.withLock { $0.stalledUntil = Date().addingTimeInterval(seconds) } }

    /// Refused links get their detach (with the reason) `seconds` after the attach answer, as a slow service may
    /// send it; 0 sends it at once.
    public func delayRefusals(seconds: Double) { state.withLock { $0.refusalDelay = max(0, seconds) } }

    var refusalDelay: Double { state.withLock { $0.refusalDelay } }

    /// Consumes one server-busy answer if any are pending.
    func takeServerBusy() -> Bool {
        state.withLock { s in
            guard s.serverBusy > 0 else { return false }
            s.serverBusy -= 1
            return true
        }
    }

    /// Seconds until deliveries may resume, or nil when not stalled.
    var stallRemaining: Double? {
        state.withLock { s in
            guard let until = s.stalledUntil else { return nil }
            let left = until.timeIntervalSinceNow
            if left <= 0 {
                s.stalledUntil = nil
                return nil
            }
            return left
        }
    }
}

/// The receivers attached to each partition with their owner levels, so that a higher owner level takes a partition
/// from lower ones (`amqp:link:stolen`), as Event Hubs does.
final class OwnerRegistry: Sendable {
    struct Entry {
        var id: UInt64
        var epoch: Int64?
        var steal: @Sendable (String) -> Void
    }

    let state = Mutex<(next: UInt64, entries: [String: [Entry]])>((0, [:]))

    static func key(_ hub: String, _ group: String, _ partition: Int) -> String { "\(hub.lowercased())/\(group.lowercased())/\(partition)" }

    /// Registers a receiver. With an owner level it displaces receivers of a lower level or none (they are told
    /// why); it is refused when a higher (or equal-level exclusive owner is not displaced) one holds the partition.
    func register(_ key: String, epoch: Int64?, steal: @escaping @Sendable (String) -> Void) -> Result<UInt64, EmulatorError> {
        let (result, stolen) = state.withLock { s -> (Result<UInt64, EmulatorError>, [Entry]) in
            var entries = s.entries[key] ?? []
            let highest = entries.compactMap(\.epoch).max()
            if let highest {
                guard let epoch, epoch >= highest else {
                    let why = epoch.map { "owner level \($0) is below the current owner's \(highest)" }
                        ?? "a receiver with owner level \(highest) holds this partition; receivers without one are refused"
                    return (.failure(EmulatorError(why)), [])
                }
            }
            var stolen: [Entry] = []
            if let epoch {
                stolen = entries.filter { ($0.epoch ?? Int64.min) < epoch }
                entries.removeAll { ($0.epoch ?? Int64.min) < epoch }
            }
            s.next += 1
            entries.append(Entry(id: s.next, epoch: epoch, steal: steal))
            s.entries[key] = entries
            return (.success(s.next), stolen)
        }
        for entry in stolen {
            entry.steal("a receiver with owner level \(epoch ?? 0) took the partition")
        }
        return result
    }

    func unregister(_ key: String, id: UInt64) {
        state.withLock { s in s.entries[key]?.removeAll { $0.id == id } }
    }

    /// Takes the partition from every receiver (a test fault).
    func stealAll(_ key: String) {
        let entries = state.withLock { s in s.entries.removeValue(forKey: key) ?? [] }
        for entry in entries { entry.steal("the partition was taken by another receiver") }
    }
}
