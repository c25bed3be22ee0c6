import Foundation
import NIOCore
import SluiceAMQP
import Synchronization

/// An event as stored: what the service assigned, and the message as receivers get it, encoded once when it is
/// enqueued — the `header` section, and everything from the message annotations (with the `x-opt-*` annotations)
/// on — so that a delivery only inserts the per-delivery runtime metrics between the two.
struct StoredEvent: Sendable {
    var sequenceNumber: Int64
    /// The byte position of the event in its partition, as Event Hubs reports offsets (a string on the wire).
    var offset: Int64
    /// Milliseconds since the epoch.
    var enqueuedTime: Int64
    var partitionKey: String?
    var encodedHeader: ByteBuffer
    var encodedRest: ByteBuffer

    init(sequenceNumber: Int64, offset: Int64, enqueuedTime: Int64, partitionKey: String?, message: AMQPMessage) {
        self.sequenceNumber = sequenceNumber
        self.offset = offset
        self.enqueuedTime = enqueuedTime
        self.partitionKey = partitionKey
        var annotations = message.messageAnnotations ?? [:]
        annotations[.symbol("x-opt-sequence-number")] = .long(sequenceNumber)
        annotations[.symbol("x-opt-offset")] = .string(String(offset))
        annotations[.symbol("x-opt-enqueued-time")] = .timestamp(enqueuedTime)
        if let partitionKey { annotations[.symbol("x-opt-partition-key")] = .string(partitionKey) }
        var rest = message
        rest.header = nil
        rest.deliveryAnnotations = nil
        rest.messageAnnotations = annotations
        encodedRest = rest.encoded
        encodedHeader = message.header.map { AMQPMessage(header: $0).encoded } ?? ByteBuffer()
    }

    /// The bytes of the delivery, with runtime metrics about `last` when asked.
    func delivery(last: StoredEvent?, now: Int64) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.reserveCapacity(encodedHeader.readableBytes + encodedRest.readableBytes + (last == nil ? 0 : Self.metricsBound))
        writeDelivery(into: &payload, last: last, now: now)
        return payload
    }

    /// Appends the bytes of the delivery (what `delivery` returns) to `out`.
    func writeDelivery(into out: inout ByteBuffer, last: StoredEvent?, now: Int64) {
        out.writeImmutableBuffer(encodedHeader)
        if let last {
            AMQPMessage(deliveryAnnotations: [
                .symbol("last_enqueued_sequence_number"): .long(last.sequenceNumber),
                .symbol("last_enqueued_offset"): .string(String(last.offset)),
                .symbol("last_enqueued_time_utc"): .timestamp(last.enqueuedTime),
                .symbol("runtime_info_retrieval_time_utc"): .timestamp(now),
            ]).encode(into: &out)
        }
        out.writeImmutableBuffer(encodedRest)
    }

    /// At most the bytes the runtime metrics add to a delivery: a described map of four symbols (the longest 31
    /// bytes) with a long, a string of at most 20 digits and two timestamps.
    static let metricsBound = 200

    /// At most the bytes of the delivery.
    func deliverySizeBound(withMetrics: Bool) -> Int {
        encodedHeader.readableBytes + encodedRest.readableBytes + (withMetrics ? Self.metricsBound : 0)
    }
}

/// Where a receiver starts, from its selector filter.
enum StartPosition: Equatable, Sendable {
    case offset(Int64, inclusive: Bool)
    case sequenceNumber(Int64, inclusive: Bool)
    case enqueuedTime(Int64, inclusive: Bool)
    case earliest
    case latest

    /// Parses `amqp.annotation.x-opt-offset > '-1'` and its relatives (sequence number, enqueued time; `>` or `>=`).
    init(selector: String) throws(EmulatorError) {
        let pattern = /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/
        guard let match = selector.wholeMatch(of: pattern) else { throw EmulatorError("unsupported selector filter \"\(selector)\"") }
        let inclusive = match.2 == ">="
        let value = String(match.3)
        switch match.1 {
        case "x-opt-offset":
            if value == "@latest" { self = .latest; return }
            guard let n = Int64(value) else { throw EmulatorError("offset '\(value)' is not a number") }
            self = n < 0 ? .earliest : .offset(n, inclusive: inclusive)
        case "x-opt-sequence-number":
            guard let n = Int64(value) else { throw EmulatorError("sequence number '\(value)' is not a number") }
            self = .sequenceNumber(n, inclusive: inclusive)
        default:
            guard let n = Int64(value) else { throw EmulatorError("enqueued time '\(value)' is not a number of milliseconds") }
            self = .enqueuedTime(n, inclusive: inclusive)
        }
    }
}

/// The emulator's event hubs: partitions of events with sequence numbers, offsets and enqueued times, shared by all
/// connections (guarded by a mutex), with wake-ups for receivers waiting for new events.
final class EventStore: Sendable {
    struct Partition {
        /// Retained events; `events[0]` has sequence number `firstSequence`.
        var events: [StoredEvent] = []
        var firstSequence: Int64 = 0
        var nextSequence: Int64 = 0
        var nextOffset: Int64 = 0
        /// The last event enqueued, kept after it expires (what runtime metrics report).
        var last: StoredEvent?
        var waiters: [UInt64: @Sendable () -> Void] = [:]
    }

    struct Hub {
        var name: String
        var createdAt: Int64
        var consumerGroups: Set<String>
        var partitions: [Partition]
    }

    struct State {
        var hubs: [String: Hub] = [:]  // by lower-cased name
        var nextWaiter: UInt64 = 0
        var roundRobin = 0
    }

    let state: Mutex<State>
    let retentionMilliseconds: Int64?

    init(configuration: EmulatorConfiguration) {
        var state = State()
        let now = Self.now()
        for hub in configuration.hubs {
            state.hubs[hub.name.lowercased()] = Hub(
                name: hub.name, createdAt: now, consumerGroups: Set((hub.consumerGroups + ["$Default"]).map { $0.lowercased() }),
                partitions: Array(repeating: Partition(), count: hub.partitionCount)
            )
        }
        self.state = Mutex(state)
        retentionMilliseconds = configuration.retentionSeconds.map { Int64($0 * 1000) }
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The hub's canonical name and partition count, if it exists.
    func hub(_ name: String) -> (name: String, partitions: Int, createdAt: Int64)? {
        state.withLock { s in s.hubs[name.lowercased()].map { ($0.name, $0.partitions.count, $0.createdAt) } }
    }

    /// Adds partitions to a hub (Event Hubs lets a hub grow, never shrink). Returns the new count.
    func grow(hub name: String, to count: Int) throws(EmulatorError) -> Int {
        try state.withLock { s throws(EmulatorError) -> Int in
            guard var hub = s.hubs[name.lowercased()] else { throw EmulatorError("event hub '\(name)' does not exist") }
            guard count >= hub.partitions.count, count <= 1024 else {
                throw EmulatorError("'\(name)' has \(hub.partitions.count) partitions; it can only grow (to at most 1024)")
            }
            hub.partitions += Array(repeating: Partition(), count: count - hub.partitions.count)
            s.hubs[name.lowercased()] = hub
            return count
        }
    }

    func hasConsumerGroup(_ hub: String, _ group: String) -> Bool {
        state.withLock { $0.hubs[hub.lowercased()]?.consumerGroups.contains(group.lowercased()) ?? false }
    }

    /// Appends events to a partition (or, with none given, by partition key hash, else round-robin) and wakes the
    /// receivers waiting on it. Returns the partition used.
    @discardableResult
    func append(hub name: String, partition requested: Int?, messages: [(message: AMQPMessage, partitionKey: String?)]) throws(EmulatorError) -> Int {
        let (partition, wake) = try state.withLock { s throws(EmulatorError) -> (Int, [@Sendable () -> Void]) in
            guard var hub = s.hubs[name.lowercased()] else { throw EmulatorError("event hub '\(name)' does not exist") }
            let partition: Int
            if let requested {
                guard hub.partitions.indices.contains(requested) else { throw EmulatorError("partition \(requested) of '\(name)' does not exist") }
                partition = requested
            } else if let key = messages.first?.partitionKey {
                partition = Int(Self.hash(key) % UInt64(hub.partitions.count))
            } else {
                partition = s.roundRobin % hub.partitions.count
                s.roundRobin += 1
            }
            let now = Self.now()
            var p = hub.partitions[partition]
            for (message, key) in messages {
                let event = StoredEvent(sequenceNumber: p.nextSequence, offset: p.nextOffset, enqueuedTime: now, partitionKey: key, message: message)
                p.events.append(event)
                p.nextSequence += 1
                p.nextOffset += Int64(max(1, event.encodedHeader.readableBytes + event.encodedRest.readableBytes))
            }
            p.last = p.events.last
            let waiters = Array(p.waiters.values)
            p.waiters.removeAll()
            hub.partitions[partition] = p
            s.hubs[name.lowercased()] = hub
            return (partition, waiters)
        }
        for w in wake { w() }
        return partition
    }

    /// FNV-1a, so that one partition key always lands on one partition.
    static func hash(_ key: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }

    /// Drops events older than the retention period.
    private static func expire(_ p: inout Partition, retention: Int64?, now: Int64) {
        guard let retention else { return }
        let cut = p.events.firstIndex { now - $0.enqueuedTime < retention } ?? p.events.count
        if cut > 0 {
            p.events.removeFirst(cut)
            p.firstSequence += Int64(cut)
        }
    }

    /// Drops a partition's retained events with sequence numbers below `before` (every retained event when nil) at
    /// once, as the retention period would when it passes: a test's way to make events expire on cue. Returns how
    /// many were dropped.
    func expire(hub name: String, partition: Int, before: Int64?) throws(EmulatorError) -> Int {
        try state.withLock { s throws(EmulatorError) -> Int in
            let key = name.lowercased()
            guard let hub = s.hubs[key] else { throw EmulatorError("event hub '\(name)' does not exist") }
            guard hub.partitions.indices.contains(partition) else { throw EmulatorError("partition \(partition) of '\(name)' does not exist") }
            var p = hub.partitions[partition]
            let cut = Int(min(max((before ?? p.nextSequence) - p.firstSequence, 0), Int64(p.events.count)))
            p.events.removeFirst(cut)
            p.firstSequence += Int64(cut)
            s.hubs[key]!.partitions[partition] = p
            return cut
        }
    }

    /// The sequence number a receiver starting at `position` reads first; an error for a position past the end.
    func startSequence(hub: String, partition: Int, position: StartPosition) throws(EmulatorError) -> Int64 {
        try state.withLock { s throws(EmulatorError) -> Int64 in
            guard var p = s.hubs[hub.lowercased()]?.partitions[partition] else { throw EmulatorError("no such partition") }
            Self.expire(&p, retention: retentionMilliseconds, now: Self.now())
            s.hubs[hub.lowercased()]!.partitions[partition] = p
            switch position {
            case .earliest: return p.firstSequence
            case .latest: return p.nextSequence
            case .sequenceNumber(let n, let inclusive):
                let first = inclusive ? n : n + 1
                guard first <= p.nextSequence else {
                    throw EmulatorError(
                        "The supplied sequence number '\(n)' is invalid. The last sequence number in the system is '\(p.nextSequence - 1)'"
                    )
                }
                return max(first, p.firstSequence)
            case .offset(let n, let inclusive):
                guard n <= p.nextOffset else {
                    throw EmulatorError("The supplied offset '\(n)' is invalid. The last offset in the system is '\(p.events.last?.offset ?? -1)'")
                }
                let index = p.events.firstIndex { inclusive ? $0.offset >= n : $0.offset > n } ?? p.events.count
                return p.firstSequence + Int64(index)
            case .enqueuedTime(let t, let inclusive):
                let index = p.events.firstIndex { inclusive ? $0.enqueuedTime >= t : $0.enqueuedTime > t } ?? p.events.count
                return p.firstSequence + Int64(index)
            }
        }
    }

    /// Up to `limit` events from sequence number `from` (skipping any that expired), and the partition's last
    /// enqueued event; or, when there is nothing yet, registers `wake` to run once events arrive and returns its id.
    func read(hub: String, partition: Int, from: Int64, limit: Int, wake: @escaping @Sendable () -> Void) -> (events: [StoredEvent], last: StoredEvent?, waiter: UInt64?) {
        state.withLock { s in
            let key = hub.lowercased()
            guard var p = s.hubs[key]?.partitions[partition] else { return ([], nil, nil) }
            Self.expire(&p, retention: retentionMilliseconds, now: Self.now())
            let start = max(from, p.firstSequence)
            let index = Int(start - p.firstSequence)
            var result: ([StoredEvent], StoredEvent?, UInt64?) = ([], p.last, nil)
            if index < p.events.count && limit > 0 {
                result.0 = Array(p.events[index..<min(p.events.count, index + limit)])
            } else if limit > 0 {
                s.nextWaiter += 1
                p.waiters[s.nextWaiter] = wake
                result.2 = s.nextWaiter
            }
            s.hubs[key]!.partitions[partition] = p
            return result
        }
    }

    func cancelWait(hub: String, partition: Int, waiter: UInt64) {
        state.withLock { s in _ = s.hubs[hub.lowercased()]?.partitions[partition].waiters.removeValue(forKey: waiter) }
    }

    /// What `$management` reports for a partition. Like the service, a partition that has never held an event begins
    /// at -1 (its last event is -1 too, and it is empty); one whose events all expired begins after its last event.
    func partitionInfo(hub: String, partition: Int) -> (begin: Int64, last: StoredEvent?, empty: Bool)? {
        state.withLock { s in
            guard var p = s.hubs[hub.lowercased()]?.partitions[partition] else { return nil }
            Self.expire(&p, retention: retentionMilliseconds, now: Self.now())
            s.hubs[hub.lowercased()]!.partitions[partition] = p
            return (p.nextSequence == 0 ? -1 : p.firstSequence, p.last, p.events.isEmpty)
        }
    }
}
