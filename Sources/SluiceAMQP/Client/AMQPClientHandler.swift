import Foundation
import NIOCore

/// How the client authenticates at the SASL layer.
public enum SASLCredentials: Sendable {
    /// ANONYMOUS (or MSSBCBS when only that is offered): the real authorisation is a token put on `$cbs`.
    case anonymous
    /// PLAIN with a user name and password.
    case plain(user: String, password: String)
}

/// A message received on a link, as bytes: `message()` decodes it, or a caller that knows the message's shape
/// reads the bytes itself (the Event Hubs receiver does, for speed).
public struct AMQPDelivery: Sendable {
    public var deliveryID: UInt32
    public var messageFormat: UInt32
    /// The encoded message (all its transfer frames' payloads).
    public var payload: ByteBuffer

    public func message() throws(AMQPError) -> AMQPMessage { try AMQPMessage(from: payload) }
}

/// The client side of one AMQP connection with one session, confined to its channel's event loop: SASL, open,
/// begin, links, flow control, transfers in and out, dispositions, heartbeats, and errors from the peer.
final class AMQPClientHandler: ChannelInboundHandler {
    typealias InboundIn = AMQPWireItem
    typealias OutboundOut = AMQPWireItem

    enum Phase { case sasl, opening, open, closed }

    final class Link {
        let name: String
        let handle: UInt32
        let role: AMQPRole
        var attached: EventLoopPromise<Void>?
        var remoteHandle: UInt32?
        var error: (any Error)?
        // receiver
        var credit: UInt32 = 0
        var deliveryCount: UInt32 = 0
        var buffer: [AMQPDelivery] = []
        var assembler = AMQPTransferAssembler()
        var waiter: (count: Int, promise: EventLoopPromise<[AMQPDelivery]>, timeout: Scheduled<Void>?)?
        // sender
        var peerCredit: UInt32 = 0
        var senderDeliveryCount: UInt32 = 0
        var queued: [(AMQPMessage, UInt32, EventLoopPromise<AMQPDeliveryState>)] = []
        /// Our detach, waiting for the peer's answer, and its deadline.
        var detached: EventLoopPromise<Void>?
        var detachTimeout: Scheduled<Void>?
        init(name: String, handle: UInt32, role: AMQPRole) {
            self.name = name
            self.handle = handle
            self.role = role
        }
    }

    let credentials: SASLCredentials
    let open: AMQPOpen
    let connected: EventLoopPromise<Void>
    private(set) var phase = Phase.sasl
    private var context: ChannelHandlerContext?
    private(set) var peerMaxFrameSize: UInt32 = 512
    private var links: [UInt32: Link] = [:]
    private var byRemoteHandle: [UInt32: Link] = [:]
    private var nextHandle: UInt32 = 0
    private var nextOutgoingID: UInt32 = 0
    /// Deliveries we sent and wait a disposition for.
    private var unsettled: [UInt32: EventLoopPromise<AMQPDeliveryState>] = [:]
    private var heartbeat: RepeatedTask?
    private(set) var failure: (any Error)?
    /// Deliveries accepted but not yet settled with a disposition (a run of consecutive ids).
    private var pendingSettlement: (first: UInt32, last: UInt32)?
    /// Why links the peer detached were closed, for the calls that come after.
    private var closedLinks: [UInt32: any Error] = [:]
    private let sessionChannel: UInt16 = 0

    init(credentials: SASLCredentials, open: AMQPOpen, connected: EventLoopPromise<Void>) {
        self.credentials = credentials
        self.open = open
        self.connected = connected
    }

    // MARK: Lifecycle

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        context.writeAndFlush(wrapOutboundOut(.header(.sasl)), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(failure ?? AMQPConnectionError(.connectionLost, "the connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(AMQPConnectionError(.connectionLost, "\(error)"))
        context.close(promise: nil)
    }

    /// Fails everything waiting, once.
    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        phase = .closed
        heartbeat?.cancel()
        connected.fail(error)
        for link in links.values { failLink(link, error) }
        links.removeAll()
        byRemoteHandle.removeAll()
        for promise in unsettled.values { promise.fail(error) }
        unsettled.removeAll()
    }

    private func failLink(_ link: Link, _ error: any Error) {
        link.error = link.error ?? error
        link.attached?.fail(error)
        link.attached = nil
        if let waiter = link.waiter {
            waiter.timeout?.cancel()
            waiter.promise.fail(error)
            link.waiter = nil
        }
        for (_, _, promise) in link.queued { promise.fail(error) }
        link.queued.removeAll()
        link.detachTimeout?.cancel()
        link.detached?.succeed()
        link.detached = nil
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let item = unwrapInboundIn(data)
        switch (phase, item) {
        case (.sasl, .header(.sasl)):
            return
        case (.sasl, .header(let other)):
            return fail(AMQPConnectionError(.protocolViolation, "the server answered with protocol header \(other), not SASL"))
        case (.sasl, .frame(let frame)):
            guard case .sasl(let body) = frame.body else { return protocolViolation("an AMQP frame during SASL") }
            sasl(body, context)
        case (.opening, .header(.amqp)):
            return
        case (.opening, .frame(let frame)), (.open, .frame(let frame)):
            switch frame.body {
            case .heartbeat: return
            case .sasl: return protocolViolation("a SASL frame after SASL")
            case .amqp(let performative): handle(performative, payload: frame.payload, context)
            }
        case (.closed, _):
            return
        default:
            protocolViolation("unexpected \(item)")
        }
    }

    private func sasl(_ body: SASLFrameBody, _ context: ChannelHandlerContext) {
        switch body {
        case .mechanisms(let offered):
            let initial: SASLInit
            switch credentials {
            case .anonymous:
                guard let mechanism = ["ANONYMOUS", "MSSBCBS"].first(where: offered.mechanisms.contains) else {
                    return fail(AMQPConnectionError(.authentication, "the server offers SASL \(offered.mechanisms.joined(separator: ", ")); anonymous authentication needs ANONYMOUS or MSSBCBS"))
                }
                initial = SASLInit(mechanism: mechanism, initialResponse: [], hostname: open.hostname)
            case .plain(let user, let password):
                guard offered.mechanisms.contains("PLAIN") else {
                    return fail(AMQPConnectionError(.authentication, "the server does not offer SASL PLAIN (it offers \(offered.mechanisms.joined(separator: ", ")))"))
                }
                initial = SASLInit(mechanism: "PLAIN", initialResponse: [0] + Array(user.utf8) + [0] + Array(password.utf8), hostname: open.hostname)
            }
            context.writeAndFlush(wrapOutboundOut(.frame(AMQPFrame(sasl: .initial(initial)))), promise: nil)
        case .challenge:
            context.writeAndFlush(wrapOutboundOut(.frame(AMQPFrame(sasl: .response(SASLResponse(response: []))))), promise: nil)
        case .outcome(let outcome):
            guard outcome.code == 0 else {
                return fail(AMQPConnectionError(.authentication, "SASL authentication failed (outcome code \(outcome.code))"))
            }
            phase = .opening
            // Pipelined: the AMQP header, open and begin go out together.
            context.write(wrapOutboundOut(.header(.amqp)), promise: nil)
            context.write(wrapOutboundOut(.frame(AMQPFrame(channel: 0, .open(open)))), promise: nil)
            let begin = AMQPBegin(nextOutgoingID: 0, incomingWindow: 1 << 30, outgoingWindow: 1 << 30, handleMax: 1023)
            context.writeAndFlush(wrapOutboundOut(.frame(AMQPFrame(channel: sessionChannel, .begin(begin)))), promise: nil)
        default:
            protocolViolation("unexpected SASL frame")
        }
    }

    private func handle(_ performative: AMQPPerformative, payload: ByteBuffer, _ context: ChannelHandlerContext) {
        switch performative {
        case .open(let peer):
            peerMaxFrameSize = max(AMQPFrame.minimumMaxFrameSize, peer.maxFrameSize ?? UInt32.max)
            if let idle = peer.idleTimeout, idle > 0 {
                let interval = TimeAmount.milliseconds(Int64(max(100, idle / 2)))
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                    bound.value.write(.frame(.heartbeat), flush: true)
                }
            }
        case .begin:
            phase = .open
            connected.succeed()
        case .attach(let attach):
            guard let link = links.values.first(where: { $0.name == attach.name }) else { return }
            link.remoteHandle = attach.handle
            byRemoteHandle[attach.handle] = link
            if link.role == .sender { link.senderDeliveryCount = 0 }
            link.attached?.succeed()
            link.attached = nil
        case .flow(let flow):
            guard let handle = flow.handle, let link = byRemoteHandle[handle], link.role == .sender else { return }
            let credit = Int64(flow.deliveryCount ?? 0) + Int64(flow.linkCredit ?? 0) - Int64(link.senderDeliveryCount)
            link.peerCredit = UInt32(clamping: max(0, credit))
            sendQueued(link)
        case .transfer(let transfer):
            guard let link = byRemoteHandle[transfer.handle], link.role == .receiver else {
                return protocolViolation("a transfer on unknown handle \(transfer.handle)")
            }
            receive(transfer, payload, link)
        case .disposition(let disposition):
            guard disposition.role == .receiver else { return }
            let last = disposition.last ?? disposition.first
            var id = disposition.first
            while true {
                if let promise = unsettled.removeValue(forKey: id) { promise.succeed(disposition.state ?? .accepted) }
                if id == last { break }
                id &+= 1
            }
        case .detach(let detach):
            guard let link = byRemoteHandle.removeValue(forKey: detach.handle) else { return }
            links.removeValue(forKey: link.handle)
            let error: any Error = detach.error ?? AMQPConnectionError(.linkClosed, "the server closed link '\(link.name)'")
            if let ours = link.detached {
                // The answer to our detach. It may carry an error: a peer refusing a link answers with an attach and
                // then a detach with the reason, which can cross ours.
                link.detached = nil
                link.detachTimeout?.cancel()
                if let remote = detach.error { ours.fail(remote) } else { ours.succeed() }
            } else {
                // The server started it: answer.
                write(.frame(AMQPFrame(channel: sessionChannel, .detach(AMQPDetach(handle: link.handle, closed: true)))), flush: true)
            }
            closedLinks[link.handle] = error
            failLink(link, error)
        case .end(let end):
            fail(end.error ?? AMQPConnectionError(.connectionLost, "the server ended the session"))
            context.close(promise: nil)
        case .close(let close):
            if phase != .closed { write(.frame(AMQPFrame(channel: 0, .close(AMQPClose()))), flush: true) }
            fail(close.error ?? AMQPConnectionError(.connectionLost, "the server closed the connection"))
            context.close(promise: nil)
        }
    }

    private func receive(_ transfer: AMQPTransfer, _ payload: ByteBuffer, _ link: Link) {
        if !link.assembler.inProgress && transfer.deliveryID == nil {
            return protocolViolation("the first transfer of a delivery has no delivery-id")
        }
        guard let delivery = link.assembler.add(transfer, payload: payload), let id = delivery.deliveryID else { return }
        // Credit is used once per message, not per frame.
        link.deliveryCount &+= 1
        link.credit = link.credit > 0 ? link.credit - 1 : 0
        if !delivery.settled { settle(id) }
        link.buffer.append(AMQPDelivery(deliveryID: id, messageFormat: delivery.messageFormat, payload: delivery.payload))
        if let waiter = link.waiter, link.buffer.count >= waiter.count {
            completeWait(link)
        }
    }

    /// Accepts a delivery. Consecutive ids are settled with one disposition covering the range, sent when the
    /// current read is processed (or when an id breaks the run), instead of one frame per message.
    private func settle(_ id: UInt32) {
        if let range = pendingSettlement, range.last &+ 1 == id {
            pendingSettlement = (range.first, id)
            return
        }
        flushSettlements()
        pendingSettlement = (id, id)
    }

    private func flushSettlements() {
        guard let range = pendingSettlement else { return }
        pendingSettlement = nil
        let disposition = AMQPDisposition(role: .receiver, first: range.first, last: range.last == range.first ? nil : range.last, settled: true, state: .accepted)
        write(.frame(AMQPFrame(channel: sessionChannel, .disposition(disposition))))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushSettlements()
        context.flush()
        context.fireChannelReadComplete()
    }

    private func completeWait(_ link: Link) {
        guard let waiter = link.waiter else { return }
        link.waiter = nil
        waiter.timeout?.cancel()
        let take = min(waiter.count, link.buffer.count)
        let deliveries = Array(link.buffer.prefix(take))
        link.buffer.removeFirst(take)
        context?.flush()
        waiter.promise.succeed(deliveries)
    }

    // MARK: Operations (on the event loop)

    func attach(_ attach: (UInt32) -> AMQPAttach, role: AMQPRole, promise: EventLoopPromise<UInt32>) {
        if let failure { return promise.fail(failure) }
        let handle = nextHandle
        nextHandle += 1
        let performative = attach(handle)
        let link = Link(name: performative.name, handle: handle, role: role)
        let attached = promise.futureResult.eventLoop.makePromise(of: Void.self)
        link.attached = attached
        links[handle] = link
        write(.frame(AMQPFrame(channel: sessionChannel, .attach(performative))), flush: true)
        attached.futureResult.map { handle }.cascade(to: promise)
    }

    /// Sets the receiver's credit to `credit` (the deliveries it may be sent from now on).
    func flow(handle: UInt32, credit: UInt32) throws {
        guard let link = links[handle] else { throw linkGone(handle) }
        if let error = link.error { throw error }
        link.credit = credit
        write(.frame(AMQPFrame(channel: sessionChannel, .flow(AMQPFlow(
            nextIncomingID: nil, incomingWindow: 1 << 30, nextOutgoingID: nextOutgoingID, outgoingWindow: 1 << 30,
            handle: handle, deliveryCount: link.deliveryCount, linkCredit: credit
        )))), flush: true)
    }

    /// Resolves with `count` deliveries, or with fewer (possibly none) when `timeout` passes first.
    func receive(handle: UInt32, count: Int, timeout: TimeAmount, promise: EventLoopPromise<[AMQPDelivery]>) {
        guard let link = links[handle] else { return promise.fail(linkGone(handle)) }
        if let error = link.error { return promise.fail(error) }
        guard link.waiter == nil else { return promise.fail(AMQPConnectionError(.protocolViolation, "two receives at once on link '\(link.name)'")) }
        link.waiter = (count, promise, nil)
        if link.buffer.count >= count { return completeWait(link) }
        let bound = NIOLoopBound((self, link), eventLoop: promise.futureResult.eventLoop)
        link.waiter?.timeout = promise.futureResult.eventLoop.scheduleTask(in: timeout) {
            let (handler, link) = bound.value
            handler.completeWait(link)
        }
    }

    func send(handle: UInt32, message: AMQPMessage, format: UInt32, promise: EventLoopPromise<AMQPDeliveryState>) {
        guard let link = links[handle] else { return promise.fail(linkGone(handle)) }
        if let error = link.error { return promise.fail(error) }
        link.queued.append((message, format, promise))
        sendQueued(link)
    }

    private func sendQueued(_ link: Link) {
        guard link.remoteHandle != nil else { return }  // not attached yet: the flow after the attach sends them
        while link.peerCredit > 0, !link.queued.isEmpty {
            let (message, format, promise) = link.queued.removeFirst()
            let id = nextOutgoingID
            nextOutgoingID &+= 1
            var tag = ByteBuffer()
            tag.writeInteger(link.senderDeliveryCount, endianness: .big)
            let transfer = AMQPTransfer(handle: link.handle, deliveryID: id, deliveryTag: Array(tag.readableBytesView), messageFormat: format, settled: false)
            for frame in AMQPFrame.transfers(channel: sessionChannel, transfer, payload: message.encoded, maxFrameSize: peerMaxFrameSize) {
                write(.frame(frame))
            }
            unsettled[id] = promise
            link.senderDeliveryCount &+= 1
            link.peerCredit -= 1
        }
        context?.flush()
    }

    /// Detaches a link; `promise` completes with the peer's answer: success, or the error the peer closed the link
    /// with (also when it closed the link before this call), or a timeout.
    func detach(handle: UInt32, timeout: TimeAmount, promise: EventLoopPromise<Void>) {
        guard let link = links[handle], link.error == nil, phase == .open else {
            if let remote = closedLinks[handle] as? AMQPRemoteError { return promise.fail(remote) }
            return promise.succeed()
        }
        link.detached = promise
        let bound = NIOLoopBound(link, eventLoop: promise.futureResult.eventLoop)
        link.detachTimeout = promise.futureResult.eventLoop.scheduleTask(in: timeout) {
            let link = bound.value
            guard let waiting = link.detached else { return }
            link.detached = nil
            waiting.fail(AMQPConnectionError(.timeout, "no answer to the detach of link '\(link.name)' within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        write(.frame(AMQPFrame(channel: sessionChannel, .detach(AMQPDetach(handle: handle, closed: true)))), flush: true)
    }

    func close(promise: EventLoopPromise<Void>) {
        guard let context else { return promise.succeed() }
        if phase == .open || phase == .opening {
            write(.frame(AMQPFrame(channel: 0, .close(AMQPClose()))), flush: true)
        }
        fail(AMQPConnectionError(.connectionLost, "the connection was closed"))
        context.close(promise: nil)
        promise.succeed()
    }

    private func linkGone(_ handle: UInt32) -> any Error {
        closedLinks[handle] ?? failure ?? AMQPConnectionError(.linkClosed, "link \(handle) is not attached")
    }

    private func write(_ item: AMQPWireItem, flush: Bool = false) {
        guard let context else { return }
        if flush { context.writeAndFlush(wrapOutboundOut(item), promise: nil) } else { context.write(wrapOutboundOut(item), promise: nil) }
    }

    private func protocolViolation(_ what: String) {
        let error = AMQPConnectionError(.protocolViolation, what)
        if phase == .open, let context {
            context.writeAndFlush(wrapOutboundOut(.frame(AMQPFrame(channel: 0, .close(AMQPClose(error: AMQPRemoteError(condition: "amqp:not-allowed", description: what)))))), promise: nil)
        }
        fail(error)
        context?.close(promise: nil)
    }
}

/// A connection-level failure seen by the client.
public struct AMQPConnectionError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable { case connectionLost, authentication, protocolViolation, linkClosed, timeout }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}
