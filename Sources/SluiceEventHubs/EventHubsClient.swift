import Foundation
import NIOCore
import NIOSSL
import SluiceAMQP
import Synchronization

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
