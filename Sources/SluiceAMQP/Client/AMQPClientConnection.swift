import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// A client connection to an AMQP 1.0 peer, with one session: links to send and receive on, and request/response
/// pairs. Every method may be called from any thread; the work happens on the connection's event loop.
public final class AMQPClientConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<AMQPClientHandler>
    public var eventLoop: any EventLoop { channel.eventLoop }

    private init(channel: any Channel, handler: NIOLoopBound<AMQPClientHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects, negotiates SASL, opens the connection and begins a session.
    ///
    /// - Parameters:
    ///   - tls: a TLS context (certificate checks on by default), or nil for plain TCP.
    ///   - hostname: the host the server knows itself as (SNI, `open.hostname`, `sasl-init.hostname`).
    ///   - idleTimeout: announced to the server (it must send something at least this often); we send heartbeats
    ///     at half the interval the server announces.
    public static func connect(
        host: String, port: Int, tls: NIOSSLContext?, hostname: String? = nil, credentials: SASLCredentials = .anonymous,
        containerID: String = "sluice-\(UUID().uuidString)", properties: AMQPMap? = nil, idleTimeout: TimeAmount = .seconds(60),
        connectTimeout: TimeAmount = .seconds(20), group: any EventLoopGroup
    ) -> EventLoopFuture<AMQPClientConnection> {
        let eventLoop = group.next()
        let connected = eventLoop.makePromise(of: Void.self)
        let open = AMQPOpen(
            containerID: containerID, hostname: hostname ?? host, maxFrameSize: 1 << 20, channelMax: 1,
            idleTimeout: UInt32(idleTimeout.nanoseconds / 1_000_000), properties: properties
        )
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let handler = try NIOSSLClientHandler(context: tls, serverHostname: Self.isIPAddress(hostname ?? host) ? nil : (hostname ?? host))
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHandler(AMQPFrameReader(maxFrameSize: 1 << 20))
                    try channel.pipeline.syncOperations.addHandler(AMQPFrameWriter())
                    try channel.pipeline.syncOperations.addHandler(AMQPClientHandler(credentials: credentials, open: open, connected: connected))
                }
            }
        let connecting = bootstrap.connect(host: host, port: port).flatMapErrorThrowing { error in throw Self.connectFailure(error) }
        // No TCP connection: the handshake promise is never going to be completed by the handler.
        connecting.whenFailure { connected.fail($0) }
        return connecting.flatMap { channel in
            // The handshake must finish within the connect timeout too.
            let timer = channel.eventLoop.scheduleTask(in: connectTimeout) {
                connected.fail(AMQPConnectionError(.timeout, "no AMQP open from \(host):\(port) within \(connectTimeout.nanoseconds / 1_000_000_000) s"))
                channel.close(promise: nil)
            }
            return connected.futureResult.flatMapThrowing {
                timer.cancel()
                let handler = try channel.pipeline.syncOperations.handler(type: AMQPClientHandler.self)
                return AMQPClientConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            }.flatMapErrorThrowing { error in
                timer.cancel()
                channel.close(promise: nil)
                throw error
            }
        }
    }

    /// Why no TCP connection was made, in a few words (NIO's description nests the attempts per address).
    static func connectFailure(_ error: any Error) -> any Error {
        guard let failure = error as? NIOConnectionError else { return error }
        if failure.connectionErrors.isEmpty { return AMQPConnectionError(.connectionLost, "cannot resolve '\(failure.host)'") }
        let reasons = failure.connectionErrors.map { attempt -> String in
            if let io = attempt.error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
            return "\(attempt.error)"
        }
        return AMQPConnectionError(.connectionLost, Array(Set(reasons)).sorted().joined(separator: "; "))
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    /// Attaches a receiving link on `source` (with its filter); no credit is given until `flow`.
    public func openReceiver(
        name: String = "receiver-\(UUID().uuidString)", source: AMQPSource, target: AMQPTarget? = nil, properties: AMQPMap? = nil,
        desiredCapabilities: [String] = [], settleFirst: Bool = true
    ) -> EventLoopFuture<AMQPReceiverLink> {
        let promise = eventLoop.makePromise(of: UInt32.self)
        eventLoop.execute { [handler] in
            handler.value.attach({ handle in
                AMQPAttach(
                    name: name, handle: handle, role: .receiver, senderSettleMode: 0, receiverSettleMode: settleFirst ? 0 : 1,
                    source: source, target: target ?? AMQPTarget(address: name), maxMessageSize: 256 << 20,
                    desiredCapabilities: desiredCapabilities, properties: properties
                )
            }, role: .receiver, promise: promise)
        }
        return promise.futureResult.map { AMQPReceiverLink(connection: self, handle: $0, name: name) }
    }

    /// Attaches a sending link to `target`.
    public func openSender(name: String = "sender-\(UUID().uuidString)", target: AMQPTarget, source: AMQPSource? = nil) -> EventLoopFuture<AMQPSenderLink> {
        let promise = eventLoop.makePromise(of: UInt32.self)
        eventLoop.execute { [handler] in
            handler.value.attach({ handle in
                AMQPAttach(
                    name: name, handle: handle, role: .sender, senderSettleMode: 0, receiverSettleMode: 0,
                    source: source ?? AMQPSource(address: name), target: target, initialDeliveryCount: 0
                )
            }, role: .sender, promise: promise)
        }
        return promise.futureResult.map { AMQPSenderLink(connection: self, handle: $0, name: name) }
    }

    /// A request/response pair on a node such as `$cbs` or `$management`: a sender to it and a receiver from it, with
    /// replies matched to requests by `correlation-id`.
    public func openRequestResponse(node: String) -> EventLoopFuture<AMQPRequestResponse> {
        let sender = openSender(name: "\(node)-sender-\(UUID().uuidString)", target: AMQPTarget(address: node), source: AMQPSource(address: node))
        let receiver = openReceiver(name: "\(node)-receiver-\(UUID().uuidString)", source: AMQPSource(address: node), target: AMQPTarget(address: node))
        return sender.and(receiver).flatMapThrowing { sender, receiver in
            try receiver.flow(credit: 100)
            return AMQPRequestResponse(sender: sender, receiver: receiver)
        }
    }

    public var isOpen: Bool { channel.isActive }

    /// Closes the connection (a `close` performative, then the socket).
    public func close() -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        eventLoop.execute { [handler] in handler.value.close(promise: promise) }
        return promise.futureResult
    }

    /// Detaches (closes) a link; resolves once the peer answered (at once if the link is already gone). Fails with
    /// the error the peer closed the link with, if it gave one, or when no answer comes within `timeout`.
    func detach(_ handle: UInt32, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        eventLoop.execute { [handler] in handler.value.detach(handle: handle, timeout: timeout, promise: promise) }
        return promise.futureResult
    }

    func onLoop<T: Sendable>(_ body: @escaping @Sendable (AMQPClientHandler) throws -> T) -> EventLoopFuture<T> {
        eventLoop.submit { [handler] in try body(handler.value) }
    }
}

/// A link that receives messages.
public struct AMQPReceiverLink: Sendable {
    let connection: AMQPClientConnection
    public let handle: UInt32
    public let name: String

    /// Sets the link's credit: the peer may send `credit` more messages. Call from any thread.
    @discardableResult
    public func flow(credit: UInt32) throws -> EventLoopFuture<Void> {
        connection.onLoop { [handle] in try $0.flow(handle: handle, credit: credit) }
    }

    /// `count` messages, or what arrived before `timeout` (maybe none). Fails if the link or connection fails.
    public func receive(count: Int, timeout: TimeAmount) -> EventLoopFuture<[AMQPDelivery]> {
        let promise = connection.eventLoop.makePromise(of: [AMQPDelivery].self)
        connection.eventLoop.execute { [connection, handle] in
            connection.handler.value.receive(handle: handle, count: count, timeout: timeout, promise: promise)
        }
        return promise.futureResult
    }

    /// Detaches the link and waits for the peer's answer; fails with the peer's error if it closed the link with one.
    public func close(timeout: TimeAmount = .seconds(30)) -> EventLoopFuture<Void> { connection.detach(handle, timeout: timeout) }
}

/// A link that sends messages.
public struct AMQPSenderLink: Sendable {
    let connection: AMQPClientConnection
    public let handle: UInt32
    public let name: String

    /// Sends once the peer gives credit; resolves with the peer's outcome.
    public func send(_ message: AMQPMessage, format: UInt32 = 0) -> EventLoopFuture<AMQPDeliveryState> {
        let promise = connection.eventLoop.makePromise(of: AMQPDeliveryState.self)
        connection.eventLoop.execute { [connection, handle] in
            connection.handler.value.send(handle: handle, message: message, format: format, promise: promise)
        }
        return promise.futureResult
    }

    /// Detaches the link and waits for the peer's answer; fails with the peer's error if it closed the link with one.
    public func close(timeout: TimeAmount = .seconds(30)) -> EventLoopFuture<Void> { connection.detach(handle, timeout: timeout) }
}

/// Requests and their replies on a management node (`$cbs`, `$management`). Many requests may be outstanding at
/// once: replies are matched to them by `correlation-id`, whatever order they come in.
public final class AMQPRequestResponse: Sendable {
    let sender: AMQPSenderLink
    let receiver: AMQPReceiverLink

    /// Outstanding requests by message-id, and whether a receive loop runs; touched on the event loop only.
    final class Pending {
        var waiting: [AMQPValue: (promise: EventLoopPromise<AMQPMessage>, timeout: Scheduled<Void>)] = [:]
        var receiving = false
    }
    private let pending: NIOLoopBound<Pending>

    init(sender: AMQPSenderLink, receiver: AMQPReceiverLink) {
        self.sender = sender
        self.receiver = receiver
        pending = NIOLoopBound(Pending(), eventLoop: sender.connection.eventLoop)
    }

    private var eventLoop: any EventLoop { sender.connection.eventLoop }

    /// Sends `message` with a fresh `message-id` and resolves with the reply whose `correlation-id` matches, or
    /// fails after `timeout`.
    public func request(_ message: AMQPMessage, timeout: TimeAmount) -> EventLoopFuture<AMQPMessage> {
        var message = message
        let id = AMQPValue.uuid(UUID())
        var properties = message.properties ?? AMQPMessageProperties()
        properties.messageID = id
        message.properties = properties
        let promise = eventLoop.makePromise(of: AMQPMessage.self)
        eventLoop.execute { [self] in
            let timer = eventLoop.scheduleTask(in: timeout) { [self] in
                if let entry = pending.value.waiting.removeValue(forKey: id) {
                    entry.promise.fail(AMQPConnectionError(.timeout, "no reply within \(timeout.nanoseconds / 1_000_000) ms"))
                }
            }
            pending.value.waiting[id] = (promise, timer)
            sender.send(message).whenFailure { [self] error in finish(id, .failure(error)) }
            receiveReplies()
        }
        return promise.futureResult
    }

    private func finish(_ id: AMQPValue, _ result: Result<AMQPMessage, any Error>) {
        guard let entry = pending.value.waiting.removeValue(forKey: id) else { return }
        entry.timeout.cancel()
        entry.promise.completeWith(result)
    }

    /// While requests are outstanding, receives replies and hands each to its request.
    private func receiveReplies() {
        guard !pending.value.receiving, !pending.value.waiting.isEmpty else { return }
        pending.value.receiving = true
        // As many replies as there are requests waiting (at most 100): the receive ends as soon as they are all in.
        let expected = max(1, min(100, pending.value.waiting.count))
        receiver.receive(count: expected, timeout: .milliseconds(200)).whenComplete { [self] result in
            pending.value.receiving = false
            switch result {
            case .success(let deliveries):
                if !deliveries.isEmpty { _ = try? receiver.flow(credit: 100) }  // keep the credit topped up
                for delivery in deliveries {
                    guard let reply = try? delivery.message(), let id = reply.properties?.correlationID else { continue }
                    finish(id, .success(reply))
                }
            case .failure(let error):
                for id in Array(pending.value.waiting.keys) { finish(id, .failure(error)) }
            }
            receiveReplies()
        }
    }

    public func close() -> EventLoopFuture<Void> { sender.close().and(receiver.close()).map { _ in } }
}
