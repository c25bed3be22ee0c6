import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import SluiceAMQP
import Synchronization

/// A local Event Hubs: an AMQP 1.0 endpoint that speaks what the Event Hubs clients speak (SASL, `$cbs` with
/// shared access signatures, `$management`, partition receivers with selector filters and owner levels, senders to
/// a hub or a partition, batches), for development and for tests. Plain TCP, or TLS with a certificate and key.
public final class EventHubsEmulator: Sendable {
    public let configuration: EmulatorConfiguration
    public let faults = EmulatorFaults()
    let store: EventStore
    let owners = OwnerRegistry()
    /// Deliveries sent unsettled on open connections that the clients have not settled yet.
    let unsettled = Atomic<Int>(0)
    private let group: MultiThreadedEventLoopGroup
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    /// Connections accepted since the emulator started (tests count the connections a client makes).
    private let accepted = Atomic<Int>(0)
    /// Where it listens (kept for `restart`).
    private let listening = Mutex<(host: String, port: Int, tls: NIOSSLContext?)?>(nil)
    private let logger: @Sendable (String) -> Void

    /// - Parameter log: receives one line per notable event (refusals, protocol errors, events produced).
    public init(configuration: EmulatorConfiguration, threads: Int = 1, log: @escaping @Sendable (String) -> Void = { _ in }) throws(EmulatorError) {
        try configuration.validate()
        self.configuration = configuration
        store = EventStore(configuration: configuration)
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        logger = log
    }

    func log(_ line: String) { logger(line) }

    /// Starts listening; returns the port (useful with port 0). With `tls`, connections must start with a TLS
    /// handshake (as Event Hubs clients do on port 5671).
    public func start(host: String = "127.0.0.1", port: Int, tls: NIOSSLContext? = nil) async throws -> Int {
        let bound = try await listen(host: host, port: port, tls: tls)
        listening.withLock { $0 = (host, bound, tls) }
        return bound
    }

    private func listen(host: String, port: Int, tls: NIOSSLContext?) async throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(AMQPFrameReader(maxFrameSize: configuration.maxFrameSize))
                    try channel.pipeline.syncOperations.addHandler(AMQPFrameWriter())
                    try channel.pipeline.syncOperations.addHandler(EmulatorConnection(emulator: self))
                    let id = ObjectIdentifier(channel)
                    accepted.add(1, ordering: .relaxed)
                    connections.withLock { $0[id] = channel }
                    channel.closeFuture.whenComplete { [self] _ in _ = connections.withLock { $0.removeValue(forKey: id) } }
                }
            }
        let listening = try await bootstrap.bind(host: host, port: port).get()
        channel.withLock { $0 = listening }
        return listening.localAddress?.port ?? port
    }

    /// A restart of the service (a fault for tests): stops listening, closes every connection, refuses connections
    /// for `seconds`, then listens again on the same address. The events are kept, as the service keeps them.
    public func restart(downFor seconds: Double) async throws {
        guard let (host, port, tls) = listening.withLock({ $0 }) else { return }
        let old = channel.withLock { c in defer { c = nil }; return c }
        try await old?.close()
        dropConnections()
        try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
        _ = try await listen(host: host, port: port, tls: tls)
    }

    /// Connections accepted since the start.
    public var acceptedConnections: Int { accepted.load(ordering: .relaxed) }

    /// Closes every client connection at once (a fault for tests): clients see the connection drop.
    public func dropConnections() {
        let all = connections.withLock { Array($0.values) }
        for connection in all { connection.close(mode: .all, promise: nil) }
    }

    /// Takes a partition from every receiver on it (`amqp:link:stolen`).
    public func stealPartition(hub: String, consumerGroup: String = "$Default", partition: Int) {
        owners.stealAll(OwnerRegistry.key(hub, consumerGroup, partition))
    }

    /// Appends events directly (tests and demos): bodies to one partition, returning their sequence numbers' start.
    public func produce(hub: String, partition: Int, bodies: [[UInt8]], properties: AMQPMap? = nil) throws(EmulatorError) {
        try store.append(hub: hub, partition: partition, messages: bodies.map { (AMQPMessage(applicationProperties: properties, body: .data([$0])), nil) })
    }

    /// Makes a partition's events below sequence number `before` (all retained ones when nil) expire now, as the
    /// retention period would; returns how many expired.
    @discardableResult
    public func expire(hub: String, partition: Int, before: Int64? = nil) throws(EmulatorError) -> Int {
        try store.expire(hub: hub, partition: partition, before: before)
    }

    /// Grows a hub to `partitions` partitions.
    public func grow(hub: String, partitions: Int) throws(EmulatorError) {
        _ = try store.grow(hub: hub, to: partitions)
    }

    /// Event deliveries and replies sent but not yet settled by the clients (on open connections).
    public var unsettledDeliveries: Int { unsettled.load(ordering: .relaxed) }

    /// The number of open client connections.
    public var connectionCount: Int { connections.withLock { $0.count } }

    /// Stops listening, closes the connections and the threads.
    public func stop() async throws {
        let listening = channel.withLock { c in defer { c = nil }; return c }
        try await listening?.close()
        dropConnections()
        try await group.shutdownGracefully()
    }
}
