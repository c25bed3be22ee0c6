import Foundation
import NIOCore
import NIOPosix
import SluiceAMQP
import SluiceEventHubs
import SluiceSDK
import Synchronization

/// `eventhubs`: the Event Hubs direct source. The partitions of every configured event hub of one namespace are the
/// stream's partitions; offsets are sequence numbers; each batch reads exactly its planned range per partition (the
/// same range again on replay), at most `eventhubs.maxRate` events per partition.
///
/// Records: value = the event body, key = its partition key (absent when it has none), timestamp = its enqueued
/// time. `available` asks `$management` for each partition's range; `read` keeps one receiver link per partition
/// open between batches and gives it exactly the credit the range needs, reconnecting and re-attaching at the
/// first missing sequence number after a dropped connection, a stolen link or a busy server.
public final class EventHubsSource: SourcePlugin {
    public typealias Configuration = EventHubsSourceConfiguration

    public static let info = PluginInfo(
        name: "eventhubs",
        version: "1.0.0",
        description: "Reads Azure Event Hubs partitions directly over AMQP 1.0 (exact ranges per batch, replayable)",
        options: EventHubsSourceConfiguration.options,
        concurrent: true
    )

    /// One partition of the stream: a hub's partition, with what this source knows of it.
    final class Partition: @unchecked Sendable {  // mutable fields are guarded by `lock`
        let hub: String
        let id: String
        let lock = NSLock()
        /// The next sequence number the host will ask for (from commits and reads), once known.
        var known: Int64?
        /// Where a partition without a known position starts (from `eventhubs.startingPosition`).
        var startFloor: Int64?
        var receiver: PartitionReceiver?
        /// The client generation the receiver was opened on.
        var receiverGeneration = -1
        /// The sequence number the open receiver delivers next.
        var next: Int64 = 0
        /// The receiver may deliver up to (not including) this sequence number with the credit it was given.
        var creditedUpTo: Int64 = 0
        /// Events received ahead of the ranges asked so far, by sequence number.
        var ahead: [Int64: ReceivedEvent] = [:]
        var skipped: Int64 = 0
        init(hub: String, id: String) {
            self.hub = hub
            self.id = id
        }
    }

    let configuration: Configuration
    let context: PluginContext
    let connectionString: EventHubsConnectionString
    let hubs: [String]
    let startPosition: EventPosition
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let client: Mutex<EventHubsClient?> = Mutex(nil)
    /// Held while connecting, so that there is one connection attempt (and one connection) at a time.
    private let connecting = NSLock()
    private let partitions: Mutex<[Partition]> = Mutex([])
    private let lastDiscovery = Mutex(Date.distantPast)
    private let isShutDown = Mutex(false)
    /// The last round of partition properties read for planning.
    private let propertiesRound = Mutex<(time: Date, properties: [Int: PartitionProperties])>((Date.distantPast, [:]))
    /// Increases each time the client is replaced; receivers opened on an older client are re-opened.
    private let clientGeneration = Atomic<Int>(0)
    private let mapFile: PartitionMapFile?

    public init(configuration: Configuration, context: PluginContext) throws {
        self.configuration = configuration
        self.context = context
        (connectionString, hubs) = try configuration.resolve()
        startPosition = try configuration.position()
        mapFile = try context.stateDirectory.map { try PartitionMapFile(directory: $0) }
        do {
            // A namespace that is briefly unreachable at start is waited for, as it is later on.
            try withRetries("connecting") { _ in }
            try loadMap()
            try discover()
            try checkConsumerGroup()
        } catch let unreachable as EventHubsUnreachable {
            shutdown()
            // Not a configuration error: the same file may work once the namespace is back (exit 1, not 2).
            throw PluginError.unavailable(unreachable.description)
        } catch {
            shutdown()
            throw error
        }
    }

    /// `sluice validate`: the connection string or the eventhubs.* keys, and the starting position, are checked as
    /// at start; nothing is connected.
    public static func check(configuration: Configuration, context: PluginContext) throws {
        _ = try configuration.resolve()
        _ = try configuration.position()
    }

    deinit { shutdown() }

    /// Closes the connection, then the event loop (once).
    private func shutdown() {
        guard let client = client.withLock({ c in defer { c = nil }; return c }) else {
            if !isShutDown.withLock({ s in defer { s = true }; return s }) { try? group.syncShutdownGracefully() }
            return
        }
        _ = try? client.close().wait()
        if !isShutDown.withLock({ s in defer { s = true }; return s }) { try? group.syncShutdownGracefully() }
    }

    // MARK: Connection

    /// The client, connecting (again) when there is none or it lost its connection. One connection per namespace:
    /// when the connection breaks, every partition's task comes here at about the same time, and only the first
    /// connects; the others wait for it and use its client (two clients would each close the other's).
    func connectedClient() throws -> EventHubsClient {
        if let existing = client.withLock({ $0 }), existing.isConnected { return existing }
        return try connecting.withLock {
            if let existing = client.withLock({ $0 }), existing.isConnected { return existing }
            let options = EventHubsClient.Options(trustedCertificatesFile: configuration.trustedCertificates)
            let fresh = try EventHubsClient.connect(connectionString, options: options, group: group).wait()
            let old = client.withLock { c in defer { c = fresh }; return c }
            if let old {
                _ = old.close()
                // Receivers belonged to the old connection: each partition re-opens its own when it sees the new
                // generation (no partition locks here; the caller may hold one).
                clientGeneration.add(1, ordering: .sequentiallyConsistent)
            }
            return fresh
        }
    }

    // MARK: Partitions

    /// Reads the partition map kept in the state directory, so that indices stay the same across restarts.
    private func loadMap() throws {
        guard let list = try mapFile?.read().map({ Partition(hub: $0.hub, id: $0.id) }) else { return }
        partitions.withLock { $0 = list }
    }

    /// Asks each hub for its partitions and appends the new ones (partitions may grow, never shrink).
    private func discover() throws {
        var found: [(String, String)] = []
        for hub in hubs {
            let ids: [String]
            ids = try withRetries("reading the partitions of '\(hub)'") { client in try client.partitionIDs(hub: hub).wait() }
            if let expected = configuration.partitionCount, ids.count < expected {
                throw PluginError("event hub '\(hub)' has \(ids.count) partitions, fewer than eventhubs.partition.count (\(expected))")
            }
            found += ids.sorted { (Int($0) ?? 0, $0) < (Int($1) ?? 0, $1) }.map { (hub, $0) }
        }
        let added = partitions.withLock { list -> [Partition] in
            let have = Set(list.map { "\($0.hub.lowercased())/\($0.id)" })
            let new = found.filter { !have.contains("\($0.0.lowercased())/\($0.1)") }.map { Partition(hub: $0.0, id: $0.1) }
            list += new
            return new
        }
        lastDiscovery.withLock { $0 = Date() }
        guard !added.isEmpty else { return }
        if let mapFile {
            try mapFile.write(partitions.withLock { list in list.map { (hub: $0.hub, id: $0.id) } })
        }
        context.log(.info, "\(added.count) partition(s): " + Dictionary(grouping: added, by: \.hub).map { "\($0.key) \($0.value.count)" }.sorted().joined(separator: ", "))
    }

    /// Opens (and closes) a receiver on each hub's first partition, so that a consumer group that does not exist, or
    /// rights that do not allow reading, fail the start rather than the first batch with events.
    private func checkConsumerGroup() throws {
        let firsts = partitions.withLock { list in Dictionary(grouping: list, by: { $0.hub.lowercased() }).values.compactMap(\.first) }
        for p in firsts {
            try withRetries("checking consumer group '\(configuration.consumerGroup)' of '\(p.hub)'") { client in
                let receiver = try client.openReceiver(
                    hub: p.hub, consumerGroup: configuration.consumerGroup, partition: p.id, from: .latest, ownerLevel: configuration.ownerLevel.map(Int64.init)
                ).wait()
                // A refusal is an attach followed by a detach with the error, which may come at any time: before our
                // detach, or as the answer to it. Closing waits for the whole exchange and fails with the error
                // either way.
                try receiver.close().wait()
            }
        }
    }

    private func partition(_ index: Int) throws -> Partition {
        try partitions.withLock { list in
            guard list.indices.contains(index) else { throw PluginError("partition \(index) does not exist (there are \(list.count))") }
            return list[index]
        }
    }

    public func partitionCount() throws -> Int {
        // New partitions are looked for every eventhubs.partitionDiscoveryMs.
        if lastDiscovery.withLock({ -$0.timeIntervalSinceNow * 1000 > Double(configuration.partitionDiscoveryMs) }) {
            do { try discover() } catch { context.log(.warning, "looking for new partitions failed: \(error)") }
        }
        return partitions.withLock { $0.count }
    }

    // MARK: Ranges

    public func available(partition index: Int) throws -> Range<UInt64> {
        let p = try partition(index)
        let properties = try partitionProperties(index)
        // Never negative: an empty partition (begin and last -1) is the empty range at 0.
        let retained = properties.retained
        let begin = retained.lowerBound, end = retained.upperBound
        return try p.lock.withLock { () throws -> Range<UInt64> in
            var from: Int64
            if let known = p.known {
                if known < begin {
                    let lost = begin - known
                    guard !configuration.failOnDataLoss else {
                        throw PluginError(
                            "\(p.hub) partition \(p.id): events \(known)..<\(begin) expired before they were read (the partition now begins at \(begin)); "
                                + "set eventhubs.failOnDataLoss: false to skip them"
                        )
                    }
                    p.skipped += lost
                    context.log(.warning, "\(p.hub) partition \(p.id): \(lost) events expired before they were read and are skipped (\(p.skipped) so far)")
                    p.known = begin
                }
                from = max(begin, p.known!)
            } else {
                if p.startFloor == nil { p.startFloor = try startFloor(p, begin: begin, end: end, lastEnqueuedTime: properties.lastEnqueuedTime) }
                from = max(begin, p.startFloor!)
            }
            from = min(from, end)
            let upper = min(end, from + Int64(configuration.maxRate))
            // Prefetch: the batch will read [from, upper) (or less), so let the open receiver start delivering now;
            // all partitions then wait for the network at once instead of one read task after another.
            if upper > from, let receiver = p.receiver, p.next == from, p.ahead[from] == nil,
                p.receiverGeneration == clientGeneration.load(ordering: .sequentiallyConsistent), p.creditedUpTo < upper
            {
                if (try? receiver.flow(credit: UInt32(upper - from))) != nil { p.creditedUpTo = upper }
            }
            return UInt64(from)..<UInt64(upper)
        }
    }

    /// A partition's properties. The host asks for every partition in turn when it plans a batch, so the first
    /// question of a round (partition 0, or anything not known or over a second old) reads all partitions at once,
    /// with concurrent `$management` requests, and the rest of the round is answered from that.
    private func partitionProperties(_ index: Int) throws -> PartitionProperties {
        if index != 0, let known = propertiesRound.withLock({ round in Date().timeIntervalSince(round.time) < 1 ? round.properties[index] : nil }) {
            return known
        }
        let list = partitions.withLock { $0 }
        let all = try withRetries("reading the partitions' properties") { client in
            let reads = list.map { client.partitionProperties(hub: $0.hub, partition: $0.id) }
            return try EventLoopFuture.whenAllSucceed(reads, on: client.eventLoop).wait()
        }
        propertiesRound.withLock { $0 = (Date(), Dictionary(uniqueKeysWithValues: all.enumerated().map { ($0.offset, $0.element) })) }
        guard all.indices.contains(index) else { throw PluginError("partition \(index) does not exist (there are \(all.count))") }
        return all[index]
    }

    /// Where a partition without a committed position starts.
    private func startFloor(_ p: Partition, begin: Int64, end: Int64, lastEnqueuedTime: Int64) throws -> Int64 {
        switch startPosition {
        case .earliest: return begin
        case .latest: return end
        case .sequenceNumber(let n): return min(max(n, begin), end)
        case .enqueuedTime(let time) where begin == end || lastEnqueuedTime <= time:
            // Nothing retained was enqueued after that time: the partition starts at its end, at once (a receiver
            // would wait its whole timeout for an event that is not there, partition after partition).
            return end
        case .enqueuedTime, .offset:
            // The first event after that time, found by a receiver with that filter (closed again: reading opens
            // its own receiver at that sequence number).
            let client = try connectedClient()
            do {
                let receiver = try client.openReceiver(hub: p.hub, consumerGroup: configuration.consumerGroup, partition: p.id, from: startPosition, ownerLevel: configuration.ownerLevel.map(Int64.init)).wait()
                try receiver.flow(credit: 1)
                let first = try receiver.receive(count: 1, timeout: .seconds(5)).wait()
                _ = try? receiver.close().wait()
                return first.first?.sequenceNumber ?? end
            } catch { throw PluginError("\(error)") }
        }
    }

    public func commit(partition index: Int, upTo offset: UInt64) throws {
        let p = try partition(index)
        p.lock.withLock {
            p.known = max(p.known ?? 0, Int64(clamping: offset))
            p.ahead = p.ahead.filter { $0.key >= Int64(clamping: offset) }
        }
    }

    public func makeOutput(partition: Int, offsets: Range<UInt64>) -> BatchBuilder {
        BatchBuilder(valueType: .bytes, keyed: true, timestamps: true, expectedCount: Int(offsets.count))
    }

    public func read(partition index: Int, offsets: Range<UInt64>, into output: inout BatchBuilder) throws {
        let p = try partition(index)
        let lo = Int64(clamping: offsets.lowerBound), hi = Int64(clamping: offsets.upperBound)
        let events = try p.lock.withLock { try fetch(p, lo, hi) }
        let asJSON = configuration.recordValue == "json"
        if output.count == 0 && !asJSON {
            // Sized for exactly these bodies: the builder's buffers are allocated once, not grown (and copied)
            // step by step through a batch of tens of megabytes.
            output = BatchBuilder(
                valueType: .bytes, keyed: true, timestamps: true, expectedCount: events.count,
                expectedBytes: events.reduce(0) { $0 + $1.body.readableBytes }
            )
        }
        for event in events {
            if asJSON {
                let text = Self.json(try event.event(), hub: p.hub, partition: p.id)
                append(Array(text.utf8), key: event.partitionKey, to: &output)
            } else {
                event.body.withUnsafeReadableBytes { append($0, key: event.partitionKey, to: &output) }
            }
            output.setLastTimestamp(event.enqueuedTime)
        }
        p.lock.withLock { p.known = max(p.known ?? 0, hi) }
    }

    private func append(_ value: some ContiguousBytes, key: String?, to output: inout BatchBuilder) {
        value.withUnsafeBytes { value in
            if var key {
                key.withUTF8 { output.append(key: UnsafeRawBufferPointer($0), value: value) }
            } else {
                output.append(value)
            }
        }
    }

    /// The most events one receive waits for.
    static let receiveChunk = 4096

    /// Events lo..<hi of a partition, exactly: from those received ahead, then from the receiver, which is
    /// (re)opened at the first missing sequence number. Transient failures are retried until the receive timeout.
    private func fetch(_ p: Partition, _ lo: Int64, _ hi: Int64) throws -> [ReceivedEvent] {
        let deadline = Date().addingTimeInterval(Double(configuration.receiveTimeoutMs) / 1000)
        var delay = 0.1
        var lastError: (any Error)?
        // Events are only added here, so the first missing one only moves forward: each scan starts where the last
        // one stopped.
        var scanned = lo
        // Room for the whole range at once, not grown chunk by chunk.
        p.ahead.reserveCapacity(p.ahead.count + Int(hi - lo))
        while true {
            let missing = (scanned..<hi).first { p.ahead[$0] == nil }
            guard let first = missing else { break }
            scanned = first
            do {
                if p.receiver == nil || p.next != first || p.receiverGeneration != clientGeneration.load(ordering: .sequentiallyConsistent) {
                    if let old = p.receiver { _ = try? old.close().wait() }
                    p.receiver = nil
                    let client = try connectedClient()
                    p.receiverGeneration = clientGeneration.load(ordering: .sequentiallyConsistent)
                    p.receiver = try client.openReceiver(
                        hub: p.hub, consumerGroup: configuration.consumerGroup, partition: p.id, from: .sequenceNumber(first),
                        ownerLevel: configuration.ownerLevel.map(Int64.init)
                    ).wait()
                    p.next = first
                    p.creditedUpTo = first
                }
                let want = Int(hi - p.next)
                // Credit given by a prefetch that covers the range still stands; otherwise ask for what is missing.
                if p.creditedUpTo < hi {
                    try p.receiver!.flow(credit: UInt32(want))
                    p.creditedUpTo = hi
                }
                let left = deadline.timeIntervalSinceNow
                guard left > 0 else { throw EventHubsError(.timeout, "no events within the receive timeout") }
                // Decoded here, on this partition's read thread, not on the connection's event loop.
                // In chunks, so that decoding the first events overlaps with receiving the rest.
                let events = try p.receiver!.receiveDeliveries(count: min(want, Self.receiveChunk), timeout: .milliseconds(Int64(min(left, 5) * 1000))).wait()
                    .map { delivery in try ReceivedEvent(delivery.payload) }
                if events.isEmpty, let begin = try? connectedClient().partitionProperties(hub: p.hub, partition: p.id).wait().retained.lowerBound,
                    begin > p.next
                {
                    // Nothing comes because the events expired after the batch was planned.
                    throw PluginError(
                        "\(p.hub) partition \(p.id): events \(p.next)..<\(begin) expired after this batch was planned (\(lo)..<\(hi)); "
                            + "the batch fails, and the next start \(configuration.failOnDataLoss ? "fails too unless eventhubs.failOnDataLoss is false" : "skips them")"
                    )
                }
                for event in events {
                    guard event.sequenceNumber == p.next else {
                        if event.sequenceNumber > p.next {
                            throw PluginError(
                                "\(p.hub) partition \(p.id): events \(p.next)..<\(event.sequenceNumber) expired before they were read; "
                                    + "the batch planned \(lo)..<\(hi) cannot be read exactly"
                            )
                        }
                        continue  // a duplicate after a re-attach
                    }
                    p.ahead[event.sequenceNumber] = event
                    p.next += 1
                }
                delay = 0.1
            } catch let error as PluginError {
                throw error
            } catch {
                lastError = error
                let eventHubsError = error as? EventHubsError
                p.receiver = nil
                if eventHubsError?.kind == .authentication || eventHubsError?.kind == .notFound || eventHubsError?.kind == .outOfRange {
                    throw PluginError("\(error)")
                }
                guard Date().addingTimeInterval(delay) < deadline else { break }
                context.log(.warning, "\(p.hub) partition \(p.id): \(error); retrying in \(Int(delay * 1000)) ms")
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 2)
            }
        }
        if let missing = (scanned..<hi).first(where: { p.ahead[$0] == nil }) {
            let got = (lo..<hi).filter { p.ahead[$0] != nil }.count
            throw PluginError(
                "\(p.hub) partition \(p.id): \(got) of the \(hi - lo) planned events (\(lo)..<\(hi)) arrived within \(configuration.receiveTimeoutMs) ms; "
                    + "first missing: \(missing)" + (lastError.map { "; last error: \($0)" } ?? "")
            )
        }
        let events = (lo..<hi).map { p.ahead.removeValue(forKey: $0)! }
        return events
    }

    /// The event as one JSON object (`eventhubs.recordValue: json`): the body as text when it is UTF-8 (else
    /// `body_base64`), and what Event Hubs knows of the event, so that stages can use its properties.
    static func json(_ event: EventHubsEvent, hub: String, partition: String) -> String {
        var fields: [String] = []
        if let text = String(validating: event.body, as: UTF8.self) {
            fields.append("\"body\":\(jsonQuoted(text))")
        } else {
            fields.append("\"body_base64\":\(jsonQuoted(Data(event.body).base64EncodedString()))")
        }
        fields.append("\"hub\":\(jsonQuoted(hub))")
        fields.append("\"partition\":\(jsonQuoted(partition))")
        fields.append("\"sequence_number\":\(event.sequenceNumber)")
        fields.append("\"offset\":\(jsonQuoted(event.offset))")
        fields.append("\"enqueued_time\":\(event.enqueuedTime)")
        if let key = event.partitionKey { fields.append("\"partition_key\":\(jsonQuoted(key))") }
        if let properties = event.properties, !properties.isEmpty {
            let entries = properties.entries.compactMap { entry -> String? in
                guard let name = entry.key.text else { return nil }
                return "\(jsonQuoted(name)):\(jsonValue(entry.value))"
            }
            fields.append("\"properties\":{\(entries.joined(separator: ","))}")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func jsonValue(_ value: AMQPValue) -> String {
        switch value {
        case .null: return "null"
        case .boolean(let b): return b ? "true" : "false"
        case .float(let f): return f.isFinite ? "\(f)" : "null"
        case .double(let d): return d.isFinite ? "\(d)" : "null"
        case .timestamp(let t): return "\(t)"
        case .string(let s), .symbol(let s): return jsonQuoted(s)
        case .uuid(let u): return jsonQuoted(u.uuidString.lowercased())
        case .binary(let b): return jsonQuoted(Data(b).base64EncodedString())
        case .list(let items): return "[" + items.map(jsonValue).joined(separator: ",") + "]"
        case .array(let array): return "[" + array.elements.map(jsonValue).joined(separator: ",") + "]"
        case .map(let map):
            return "{" + map.entries.compactMap { e in e.key.text.map { "\(jsonQuoted($0)):\(jsonValue(e.value))" } }.joined(separator: ",") + "}"
        default: return value.int64Value.map { "\($0)" } ?? value.uint64Value.map { "\($0)" } ?? "null"
        }
    }

    /// Runs a management call, (re)connecting and retrying transient failures (with back-off 0.1 s doubling to 2 s)
    /// until the receive timeout has passed. When the namespace could not even be connected to, the error says it
    /// is unreachable: where, how many attempts, for how long.
    private func withRetries<T>(_ what: String, _ body: (EventHubsClient) throws -> T) throws -> T {
        let started = Date()
        let deadline = started.addingTimeInterval(Double(configuration.receiveTimeoutMs) / 1000)
        var delay = 0.1
        var attempts = 0
        while true {
            attempts += 1
            var connected = false
            do {
                let client = try connectedClient()
                connected = true
                return try body(client)
            } catch {
                let transient = (error as? EventHubsError)?.isTransient ?? (error is PluginError ? false : true)
                let left = deadline.timeIntervalSinceNow
                if !transient || left <= 0 {
                    guard connected || !transient else {
                        throw EventHubsUnreachable(
                            address: connectionString.address, attempts: attempts, seconds: -started.timeIntervalSinceNow,
                            timeoutMs: configuration.receiveTimeoutMs, what: what, lastError: "\(error)"
                        )
                    }
                    throw PluginError("\(what): \(error)")
                }
                // The last wait is cut to the deadline, so that the final attempt is made at the deadline.
                let wait = min(delay, left)
                context.log(.warning, "\(what): \(error); retrying in \(Int(wait * 1000)) ms")
                Thread.sleep(forTimeInterval: wait)
                delay = min(delay * 2, 2)
            }
        }
    }
}
