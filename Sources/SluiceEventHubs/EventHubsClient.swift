import Foundation
import NIOCore
import NIOSSL
import SluiceAMQP
import Synchronization

/// An event as read from a partition.
public struct EventHubsEvent: Sendable, Hashable {
    public var sequenceNumber: Int64
    /// Opaque; Event Hubs gives a string.
    public var offset: String
    /// Milliseconds since the epoch.
    public var enqueuedTime: Int64
    public var partitionKey: String?
    public var body: [UInt8]
    /// The application properties the producer set.
    public var properties: AMQPMap?
    public var messageProperties: AMQPMessageProperties?
    /// With runtime metrics: the partition's last enqueued sequence number when the event was sent.
    public var lastEnqueuedSequenceNumber: Int64? = nil
}

/// Where a receiver starts reading a partition.
public enum EventPosition: Hashable, Sendable {
    case earliest
    case latest
    /// From this sequence number (inclusive).
    case sequenceNumber(Int64)
    /// After this enqueued time (milliseconds since the epoch).
    case enqueuedTime(Int64)
    /// After (or, inclusive, at) this offset, as Event Hubs reports offsets.
    case offset(String, inclusive: Bool)

    var selector: String {
        switch self {
        case .earliest: "amqp.annotation.x-opt-offset > '-1'"
        case .latest: "amqp.annotation.x-opt-offset > '@latest'"
        case .sequenceNumber(let n): "amqp.annotation.x-opt-sequence-number >= '\(n)'"
        case .enqueuedTime(let t): "amqp.annotation.x-opt-enqueued-time > '\(t)'"
        case .offset(let offset, let inclusive): "amqp.annotation.x-opt-offset \(inclusive ? ">=" : ">") '\(offset)'"
        }
    }
}

/// What `$management` says of a partition, as the service reports it.
public struct PartitionProperties: Sendable, Hashable {
    /// -1 when the partition has never held an event.
    public var beginSequenceNumber: Int64
    /// -1 when the partition has never held an event.
    public var lastEnqueuedSequenceNumber: Int64
    /// "-1" when the partition has never held an event.
    public var lastEnqueuedOffset: String
    public var lastEnqueuedTime: Int64
    /// No event is retained: it never held one, or all it held expired.
    public var isEmpty: Bool

    public init(beginSequenceNumber: Int64, lastEnqueuedSequenceNumber: Int64, lastEnqueuedOffset: String, lastEnqueuedTime: Int64, isEmpty: Bool) {
        self.beginSequenceNumber = beginSequenceNumber
        self.lastEnqueuedSequenceNumber = lastEnqueuedSequenceNumber
        self.lastEnqueuedOffset = lastEnqueuedOffset
        self.lastEnqueuedTime = lastEnqueuedTime
        self.isEmpty = isEmpty
    }

    /// The sequence numbers the partition holds now, never negative. The service reports a partition that never held
    /// an event as begin -1 and last -1 (`is_partition_empty`): that is "nothing yet", the empty range at 0, and the
    /// next event is 0. A partition whose events all expired is the empty range after its last event.
    public var retained: Range<Int64> {
        let end = max(lastEnqueuedSequenceNumber, -1) + 1
        let begin = isEmpty || beginSequenceNumber < 0 ? end : min(beginSequenceNumber, end)
        return begin..<end
    }
}

/// An Event Hubs namespace over AMQP: one connection, tokens on `$cbs` (renewed before they expire),
/// `$management` reads, and partition receivers.
public final class EventHubsClient: Sendable {
    public struct Options: Sendable {
        /// Trust these PEM certificates (a private CA, the emulator's self-signed certificate) instead of the system's.
        public var trustedCertificatesFile: String?
        /// Token lifetime for tokens made from a key.
        public var tokenLifetime: Int64 = 3600
        public var operationTimeout: TimeAmount = .seconds(30)
        public init(trustedCertificatesFile: String? = nil) { self.trustedCertificatesFile = trustedCertificatesFile }
    }

    public let connectionString: EventHubsConnectionString
    let options: Options
    let connection: AMQPClientConnection
    private let cbs: AMQPRequestResponse
    private let management: AMQPRequestResponse
    private let renewals = Mutex<[String: Scheduled<Void>]>([:])
    private let broken = Mutex(false)
    /// Paths with a valid token on this connection (kept fresh by the renewals).
    private let authorized = Mutex<Set<String>>([])

    private init(connectionString: EventHubsConnectionString, options: Options, connection: AMQPClientConnection, cbs: AMQPRequestResponse, management: AMQPRequestResponse) {
        self.connectionString = connectionString
        self.options = options
        self.connection = connection
        self.cbs = cbs
        self.management = management
    }

    /// Connects (TLS with certificate checks unless the connection string is for the development emulator).
    public static func connect(_ connectionString: EventHubsConnectionString, options: Options = Options(), group: any EventLoopGroup) -> EventLoopFuture<EventHubsClient> {
        let tls: NIOSSLContext?
        do {
            tls = try makeTLS(connectionString, options)
        } catch {
            return group.next().makeFailedFuture(error)
        }
        return AMQPClientConnection.connect(
            host: connectionString.host, port: connectionString.effectivePort, tls: tls, hostname: connectionString.host,
            properties: [.symbol("product"): "sluice", .symbol("user-agent"): "sluice-eventhubs"], group: group
        ).flatMapError { error in
            group.next().makeFailedFuture(EventHubsError(.connection, "cannot connect to \(connectionString.address)\(tls == nil ? "" : " (TLS)"): \(error)"))
        }.flatMap { connection in
            connection.openRequestResponse(node: "$cbs").and(connection.openRequestResponse(node: "$management")).map { cbs, management in
                EventHubsClient(connectionString: connectionString, options: options, connection: connection, cbs: cbs, management: management)
            }.flatMapErrorThrowing { error in
                _ = connection.close()
                throw Self.translate(error, "opening $cbs and $management")
            }
        }
    }

    static func makeTLS(_ connectionString: EventHubsConnectionString, _ options: Options) throws -> NIOSSLContext? {
        if connectionString.useDevelopmentEmulator { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let file = options.trustedCertificatesFile {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
            } catch {
                throw EventHubsError(.configuration, "cannot read trusted certificates from '\(file)': \(error)")
            }
        }
        return try NIOSSLContext(configuration: configuration)
    }

    public func close() -> EventLoopFuture<Void> {
        renewals.withLock { for task in $0.values { task.cancel() }; $0.removeAll() }
        return connection.close()
    }

    public var eventLoop: any EventLoop { connection.eventLoop }
    /// Whether the connection and its `$cbs` / `$management` links still work (reconnect when not).
    public var isConnected: Bool { connection.isOpen && !broken.withLock { $0 } }

    /// `sb://host[:port]/path`.
    func audience(_ path: String) -> String { "sb://\(connectionString.authority)/\(path)" }

    /// A token for `audience`: made from the key, or the connection string's signature.
    func token(for audience: String) -> (String, Int64) {
        switch connectionString.credential {
        case .sharedAccessKey(let name, let key):
            // Expiries are whole seconds: rounded up, so that a token lives at least `tokenLifetime` seconds.
            let expiry = Int64(Date().timeIntervalSince1970.rounded(.up)) + options.tokenLifetime
            return (SharedAccessSignature(audience: audience, keyName: name, key: key, expiry: expiry).token, expiry)
        case .sharedAccessSignature(let token):
            return (token, (try? SharedAccessSignature(parsing: token).expiry) ?? Int64.max)
        }
    }

    /// Puts a token for `path` on `$cbs`, and schedules its renewal when a tenth of its life is left.
    public func authorize(_ path: String) -> EventLoopFuture<Void> {
        let audience = audience(path)
        let (token, expiry) = token(for: audience)
        let request = AMQPMessage(
            applicationProperties: [
                "operation": "put-token", "type": "servicebus.windows.net:sastoken", "name": .string(audience),
                "expiration": .timestamp(expiry * 1000),
            ],
            body: .value(.string(token))
        )
        return rpc(cbs, request, what: "authorizing \(path)").flatMapThrowing { [self] reply in
            let (status, description) = Self.status(reply)
            guard (200..<300).contains(status) else {
                throw Self.statusError(status, description, "putting a token for \(audience) on $cbs")
            }
            authorized.withLock { _ = $0.insert(path.lowercased()) }
            if case .sharedAccessKey = connectionString.credential {
                let left = expiry * 1000 - Int64(Date().timeIntervalSince1970 * 1000)
                // A tenth of the life left; the floor only keeps a degenerate lifetime from renewing in a tight loop
                // (it stays well below any real lifetime, so the renewal always comes before the expiry).
                scheduleRenewal(path, in: .milliseconds(max(100, left * 9 / 10)))
            }
        }
    }

    /// Puts the token for `path` again after `delay`; a failed renewal is tried again every 5 seconds.
    private func scheduleRenewal(_ path: String, in delay: TimeAmount) {
        let task = eventLoop.scheduleTask(in: delay) { [weak self] in
            guard let self else { return }
            authorize(path).whenFailure { [weak self] _ in self?.scheduleRenewal(path, in: .seconds(5)) }
        }
        renewals.withLock { $0[path]?.cancel(); $0[path] = task }
    }

    private func rpc(_ pair: AMQPRequestResponse, _ request: AMQPMessage, what: String) -> EventLoopFuture<AMQPMessage> {
        let reply = pair.request(request, timeout: options.operationTimeout)
        return reply.flatMapErrorThrowing { [self] error in
            // The request links failed (not a status answer): this client cannot be used again.
            broken.withLock { $0 = true }
            throw Self.translate(error, what)
        }
    }

    /// An error for a `$cbs` or `$management` status code.
    static func statusError(_ status: Int, _ description: String, _ what: String) -> EventHubsError {
        switch status {
        case 401, 403: EventHubsError(.authentication, "\(what): refused (status \(status)): \(Self.sentence(description)) Check the key name and the key (or the signature).")
        case 404: EventHubsError(.notFound, "\(what): not found (status 404): \(description)")
        case 503: EventHubsError(.serverBusy, "\(what): the service is busy (status 503): \(description)")
        default: EventHubsError(.connection, "\(what): status \(status): \(description)")
        }
    }

    /// `text` as one sentence: with a final period, whether or not the service's description already had one.
    static func sentence(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return "(no description)." }
        return trimmed.hasSuffix(".") ? trimmed : trimmed + "."
    }

    static func status(_ reply: AMQPMessage) -> (Int, String) {
        let app = reply.applicationProperties ?? [:]
        let code = (app[text: "status-code"] ?? app[text: "statusCode"])?.int64Value.map(Int.init) ?? 0
        let description = (app[text: "status-description"] ?? app[text: "statusDescription"])?.text ?? ""
        return (code, description)
    }

    /// A management read, with a fresh token for the hub.
    private func read(_ hub: String, type: String, partition: String?) -> EventLoopFuture<AMQPMap> {
        var app: AMQPMap = ["operation": "READ", "type": .string(type), "name": .string(hub), "security_token": .string(token(for: audience(hub)).0)]
        if let partition { app["partition"] = .string(partition) }
        return rpc(management, AMQPMessage(applicationProperties: app), what: "reading \(hub) properties").flatMapThrowing { reply in
            let (status, description) = Self.status(reply)
            guard (200..<300).contains(status) else {
                throw Self.statusError(status, description, "reading \(hub)\(partition.map { " partition \($0)" } ?? "") on $management")
            }
            guard case .value(.map(let map)) = reply.body else { throw EventHubsError(.protocolViolation, "the $management reply for \(hub) has no map body") }
            return map
        }
    }

    /// The partition ids of a hub.
    public func partitionIDs(hub: String) -> EventLoopFuture<[String]> {
        read(hub, type: "com.microsoft:eventhub", partition: nil).flatMapThrowing { map in
            switch map[text: "partition_ids"] {
            case .array(let array): return array.elements.compactMap(\.text)
            case .list(let list): return list.compactMap(\.text)
            default: throw EventHubsError(.protocolViolation, "the $management reply for \(hub) has no partition_ids")
            }
        }
    }

    public func partitionProperties(hub: String, partition: String) -> EventLoopFuture<PartitionProperties> {
        read(hub, type: "com.microsoft:partition", partition: partition).map { map in
            PartitionProperties(
                beginSequenceNumber: map[text: "begin_sequence_number"]?.int64Value ?? 0,
                lastEnqueuedSequenceNumber: map[text: "last_enqueued_sequence_number"]?.int64Value ?? -1,
                lastEnqueuedOffset: map[text: "last_enqueued_offset"]?.text ?? "-1",
                lastEnqueuedTime: { if case .timestamp(let t) = map[text: "last_enqueued_time_utc"] { t } else { 0 } }(),
                isEmpty: { if case .boolean(let b) = map[text: "is_partition_empty"] { b } else { false } }()
            )
        }
    }

    /// Opens a receiver on one partition (after authorizing the consumer group). With `runtimeMetrics` the service
    /// adds the partition's last enqueued event to each delivery (unused by the source, which asks `$management`).
    public func openReceiver(
        hub: String, consumerGroup: String, partition: String, from position: EventPosition, ownerLevel: Int64? = nil, runtimeMetrics: Bool = false
    ) -> EventLoopFuture<PartitionReceiver> {
        let path = "\(hub)/ConsumerGroups/\(consumerGroup)/Partitions/\(partition)"
        let filterName = "apache.org:selector-filter:string"
        let source = AMQPSource(
            address: "amqps://\(connectionString.authority)/\(path)",
            filter: [.symbol(filterName): .described(descriptor: .symbol(filterName), value: .string(position.selector))]
        )
        var properties: AMQPMap = [.symbol("com.microsoft:timeout"): .long(0)]
        if let ownerLevel { properties[.symbol("com.microsoft:epoch")] = .long(ownerLevel) }
        let group = "\(hub)/consumergroups/\(consumerGroup)"
        let ready = authorized.withLock { $0.contains(group.lowercased()) } ? eventLoop.makeSucceededVoidFuture() : authorize(group)
        return ready.flatMap { [connection] in
            connection.openReceiver(source: source, properties: properties, desiredCapabilities: runtimeMetrics ? ["com.microsoft:enable-receiver-runtime-metric"] : [])
        }.map { PartitionReceiver(link: $0, hub: hub, partition: partition) }
            .flatMapErrorThrowing { error in throw Self.translate(error, "opening a receiver on \(hub) partition \(partition)") }
    }

    /// Turns AMQP errors into Event Hubs errors with the condition and what was being done.
    static func translate(_ error: any Error, _ what: String) -> EventHubsError {
        if let error = error as? EventHubsError { return error }
        if let remote = error as? AMQPRemoteError {
            let detail = remote.errorDescription.map { ": \($0)" } ?? ""
            switch remote.condition {
            case "amqp:link:stolen":
                return EventHubsError(.linkStolen, "\(what): another receiver with a higher owner level took the partition (amqp:link:stolen)\(detail)")
            case "com.microsoft:server-busy":
                return EventHubsError(.serverBusy, "\(what): the service is busy (com.microsoft:server-busy); backing off\(detail)")
            case "com.microsoft:argument-out-of-range":
                return EventHubsError(.outOfRange, "\(what): position out of range (com.microsoft:argument-out-of-range)\(detail)")
            case "amqp:unauthorized-access":
                return EventHubsError(.authentication, "\(what): not authorized (amqp:unauthorized-access)\(detail)")
            case "amqp:not-found":
                return EventHubsError(.notFound, "\(what): not found (amqp:not-found)\(detail)")
            case "com.microsoft:timeout":
                return EventHubsError(.timeout, "\(what): the service timed out\(detail)")
            default:
                return EventHubsError(.connection, "\(what): \(remote.condition)\(detail)")
            }
        }
        if let amqp = error as? AMQPConnectionError {
            switch amqp.kind {
            case .authentication: return EventHubsError(.authentication, "\(what): \(amqp.message)")
            case .timeout: return EventHubsError(.timeout, "\(what): \(amqp.message)")
            case .protocolViolation: return EventHubsError(.protocolViolation, "\(what): \(amqp.message)")
            default: return EventHubsError(.connection, "\(what): \(amqp.message)")
            }
        }
        return EventHubsError(.connection, "\(what): \(error)")
    }
}

/// A receiver on one partition.
public struct PartitionReceiver: Sendable {
    let link: AMQPReceiverLink
    public let hub: String
    public let partition: String

    /// Allows the service to send `credit` more events.
    public func flow(credit: UInt32) throws { try link.flow(credit: credit) }

    /// Up to `count` events, or what arrived within `timeout`.
    public func receive(count: Int, timeout: TimeAmount) -> EventLoopFuture<[EventHubsEvent]> {
        let hub = hub, partition = partition
        return link.receive(count: count, timeout: timeout).flatMapThrowing { deliveries in
            try deliveries.map { try Self.event($0.payload) }
        }.flatMapErrorThrowing { error in throw EventHubsClient.translate(error, "receiving from \(hub) partition \(partition)") }
    }

    /// Reads an event delivery section by section, decoding only what an event needs: the body's bytes are taken
    /// straight from the `data` section. Anything unusual (a described-by-name section, a body that is not `data`)
    /// goes through the general message decoder.
    static func event(_ payload: ByteBuffer) throws -> EventHubsEvent {
        var buffer = payload
        var annotations: AMQPMap = [:]
        var properties: AMQPMessageProperties?
        var applicationProperties: AMQPMap?
        var deliveryAnnotations: AMQPMap?
        var body: [UInt8]?
        while buffer.readableBytes > 0 {
            guard buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0x00,
                buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) == 0x53,
                let code = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt8.self)
            else { return try event(AMQPMessage(from: payload)) }
            if code == 0x75, let constructor = buffer.getInteger(at: buffer.readerIndex + 3, as: UInt8.self), constructor == 0xa0 || constructor == 0xb0 {
                buffer.moveReaderIndex(forwardBy: 4)
                let length = constructor == 0xa0 ? buffer.readInteger(as: UInt8.self).map(Int.init) : buffer.readInteger(endianness: .big, as: UInt32.self).map(Int.init)
                guard let length, let bytes = buffer.readBytes(length: length) else {
                    throw EventHubsError(.protocolViolation, "an event's data section is truncated")
                }
                body = body.map { $0 + bytes } ?? bytes
                continue
            }
            let section = try buffer.readAMQPValue()
            guard case .described(_, let value) = section else { continue }
            switch (code, value) {
            case (0x71, .map(let map)): deliveryAnnotations = map
            case (0x72, .map(let map)): annotations = map
            case (0x74, .map(let map)): applicationProperties = map
            case (0x73, _): properties = try AMQPMessageProperties(section)
            case (0x77, _), (0x76, _): return try event(AMQPMessage(from: payload))
            default: continue
            }
        }
        var event = try event(annotations: annotations, properties: properties, applicationProperties: applicationProperties, body: body ?? [])
        event.lastEnqueuedSequenceNumber = deliveryAnnotations?[text: "last_enqueued_sequence_number"]?.int64Value
        return event
    }

    static func event(_ message: AMQPMessage) throws -> EventHubsEvent {
        let body: [UInt8]
        switch message.body {
        case .data(let sections): body = sections.count == 1 ? sections[0] : sections.flatMap { $0 }
        case .value(let value): body = value.text.map { Array($0.utf8) } ?? []
        default: body = []
        }
        var event = try event(annotations: message.messageAnnotations ?? [:], properties: message.properties, applicationProperties: message.applicationProperties, body: body)
        event.lastEnqueuedSequenceNumber = message.deliveryAnnotations?[text: "last_enqueued_sequence_number"]?.int64Value
        return event
    }

    static func event(annotations: AMQPMap, properties: AMQPMessageProperties?, applicationProperties: AMQPMap?, body: [UInt8]) throws -> EventHubsEvent {
        guard let sequence = annotations[text: "x-opt-sequence-number"]?.int64Value else {
            throw EventHubsError(.protocolViolation, "an event without x-opt-sequence-number")
        }
        let enqueued: Int64 = if case .timestamp(let t) = annotations[text: "x-opt-enqueued-time"] { t } else { 0 }
        return EventHubsEvent(
            sequenceNumber: sequence, offset: annotations[text: "x-opt-offset"]?.text ?? "", enqueuedTime: enqueued,
            partitionKey: annotations[text: "x-opt-partition-key"]?.text, body: body, properties: applicationProperties,
            messageProperties: properties
        )
    }

    /// Detaches the link and waits for the service's answer (at most `timeout`). Fails with the service's error when
    /// it closed the link with one — a refusal (unknown consumer group, no rights) that came after the attach, either
    /// before this detach or as the answer to it.
    public func close(timeout: TimeAmount = .seconds(30)) -> EventLoopFuture<Void> {
        let hub = hub, partition = partition
        return link.close(timeout: timeout).flatMapErrorThrowing { error in
            throw EventHubsClient.translate(error, "the receiver on \(hub) partition \(partition)")
        }
    }
}
