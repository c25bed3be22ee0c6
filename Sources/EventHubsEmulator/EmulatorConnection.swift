import Foundation
import NIOCore
import SluiceAMQP
import SluiceEventHubs
import Synchronization

/// One client connection to the emulator: SASL, the AMQP connection, its sessions and links, `$cbs`, `$management`,
/// partition receivers and event hub senders. Runs on its channel's event loop.
///
/// Every performative it sends is a full-length list (the official Python SDK 5.15.1 cannot read short ones).
final class EmulatorConnection: ChannelInboundHandler {
    typealias InboundIn = AMQPWireItem
    typealias OutboundOut = AMQPWireItem

    enum Phase { case start, sasl, awaitingAMQPHeader, awaitingOpen, open, closed }

    /// What a link is for.
    enum LinkKind {
        case cbsRequests, cbsReplies, managementRequests, managementReplies
        case publisher(hub: String, partition: Int?)
        case receiver(Receiver)
    }

    final class Receiver {
        let hub: String
        let group: String
        let partition: Int
        var nextSequence: Int64
        let runtimeMetrics: Bool
        var ownerID: UInt64?
        var waiter: UInt64?
        init(hub: String, group: String, partition: Int, nextSequence: Int64, runtimeMetrics: Bool) {
            self.hub = hub
            self.group = group
            self.partition = partition
            self.nextSequence = nextSequence
            self.runtimeMetrics = runtimeMetrics
        }
    }

    final class Link {
        let name: String
        /// The handle the peer chose (we answer with the same number).
        let handle: UInt32
        let kind: LinkKind
        /// As sender: deliveries sent, and the credit the peer gave.
        var deliveryCount: UInt32 = 0
        var credit: UInt32 = 0
        /// As sender: replies waiting for credit.
        var queued: [AMQPMessage] = []
        /// As receiver: credit we gave, and a message arriving in several frames.
        var creditGiven: UInt32 = 0
        var assembler = AMQPTransferAssembler()
        /// The delivery being handled (what `settle` answers).
        var current: AMQPTransferAssembler.Delivery?
        init(name: String, handle: UInt32, kind: LinkKind) {
            self.name = name
            self.handle = handle
            self.kind = kind
        }
    }

    final class Session {
        let channel: UInt16
        var nextOutgoingID: UInt32 = 0
        /// Deliveries sent unsettled and not yet settled by the peer.
        var unsettled = UnsettledDeliveries()
        var links: [UInt32: Link] = [:]
        init(channel: UInt16) { self.channel = channel }
    }

    let emulator: EventHubsEmulator
    private var phase = Phase.start
    private var context: ChannelHandlerContext?
    private var peerMaxFrameSize: UInt32 = UInt32.max
    private var sessions: [UInt16: Session] = [:]
    /// Tokens put on `$cbs`, by audience path (`/hub` or `/hub/consumergroups/cg`), with their expiry.
    private var tokens: [(path: String, expiry: Int64)] = []
    private var heartbeat: RepeatedTask?
    private var stallTimer: Scheduled<Void>?
    /// Links (channel, handle) that had events to send while deliveries were stalled.
    private var stalled: [(UInt16, UInt32)] = []

    init(emulator: EventHubsEmulator) { self.emulator = emulator }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        heartbeat?.cancel()
        stallTimer?.cancel()
        for session in sessions.values {
            for link in session.links.values { release(link) }
            emulator.unsettled.add(-session.unsettled.count, ordering: .relaxed)
        }
        sessions.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeConnection(condition: "amqp:decode-error", description: "\(error)")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let item = unwrapInboundIn(data)
        if phase == .closed { return }  // frames still buffered after a close
        switch (phase, item) {
        case (.start, .header(.sasl)):
            write(.header(.sasl))
            write(.frame(AMQPFrame(sasl: .mechanisms(SASLMechanisms(mechanisms: ["MSSBCBS", "ANONYMOUS", "PLAIN"])))), flush: true)
            phase = .sasl
        case (.start, .header(.amqp)):
            // Without SASL: allowed here (the tokens on $cbs still guard every entity).
            write(.header(.amqp), flush: true)
            phase = .awaitingOpen
        case (.start, .header(let other)):
            write(.header(.sasl), flush: true)
            context.close(promise: nil)
            emulator.log("refused protocol header \(other)")
        case (.sasl, .frame(let frame)):
            guard case .sasl(.initial(let initial)) = frame.body else { return protocolError("expected sasl-init") }
            var code: UInt8 = 0
            if initial.mechanism == "PLAIN" {
                // authzid NUL authcid NUL password: the key name and the key.
                let parts = (initial.initialResponse ?? []).split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
                if parts.count != 3 || emulator.configuration.keys[parts[1]] != parts[2] { code = 1 }
            } else if initial.mechanism != "ANONYMOUS" && initial.mechanism != "MSSBCBS" {
                code = 1
            }
            write(.frame(AMQPFrame(sasl: .outcome(SASLOutcome(code: code)))), flush: true)
            if code != 0 { context.close(promise: nil) } else { phase = .awaitingAMQPHeader }
        case (.awaitingAMQPHeader, .header(.amqp)):
            write(.header(.amqp), flush: true)
            phase = .awaitingOpen
        case (.awaitingOpen, .frame(let frame)):
            guard case .amqp(.open(let open)) = frame.body else { return protocolError("expected open") }
            peerMaxFrameSize = max(AMQPFrame.minimumMaxFrameSize, open.maxFrameSize ?? UInt32.max)
            let reply = AMQPOpen(
                containerID: "sluice-eventhubs-emulator", hostname: open.hostname, maxFrameSize: emulator.configuration.maxFrameSize,
                channelMax: 4095, idleTimeout: nil
            )
            write(.frame(AMQPFrame(channel: 0, .open(reply))), flush: true)
            if let idle = open.idleTimeout, idle > 0 {
                let interval = TimeAmount.milliseconds(Int64(max(50, idle / 2)))
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                    bound.value.write(.frame(.heartbeat), flush: true)
                }
            }
            phase = .open
        case (.open, .frame(let frame)):
            guard case .amqp(let performative) = frame.body else {
                if case .heartbeat = frame.body { return }
                return protocolError("a SASL frame after the connection opened")
            }
            handle(performative, channel: frame.channel, payload: frame.payload)
        case (_, .frame(let frame)) where frame.body == .heartbeat:
            return
        default:
            protocolError("unexpected \(item) while \(phase)")
        }
    }

    // MARK: Performatives

    private func handle(_ performative: AMQPPerformative, channel: UInt16, payload: ByteBuffer) {
        switch performative {
        case .open: protocolError("a second open")
        case .begin:
            guard sessions[channel] == nil else { return protocolError("channel \(channel) is already in use") }
            sessions[channel] = Session(channel: channel)
            // Windows wide enough that neither side ever waits on them; link credit does the flow control.
            let reply = AMQPBegin(remoteChannel: channel, nextOutgoingID: 0, incomingWindow: 1 << 30, outgoingWindow: 1 << 30, handleMax: 4095)
            write(.frame(AMQPFrame(channel: channel, .begin(reply))), flush: true)
        case .attach(let attach):
            guard let session = sessions[channel] else { return protocolError("attach on channel \(channel) without a session") }
            self.attach(attach, session)
        case .flow(let flow):
            guard let session = sessions[channel] else { return }
            guard let handle = flow.handle, let link = session.links[handle] else { return }
            // Our credit: the peer's view of the delivery count plus the credit it grants, less what we sent.
            let peerCount = flow.deliveryCount ?? 0
            let credit = Int64(peerCount) + Int64(flow.linkCredit ?? 0) - Int64(link.deliveryCount)
            link.credit = UInt32(clamping: max(0, credit))
            pump(link, session)
            if flow.drain && link.credit > 0 {
                link.deliveryCount &+= link.credit
                link.credit = 0
                sendFlow(link, session, drain: true)
            } else if flow.echo {
                sendFlow(link, session)
            }
        case .transfer(let transfer):
            guard let session = sessions[channel], let link = session.links[transfer.handle] else {
                return protocolError("transfer on an unknown link handle \(transfer.handle)")
            }
            receive(transfer, payload: payload, link, session)
        case .disposition(let disposition):
            guard disposition.role == .receiver, disposition.settled, let session = sessions[channel] else { return }
            let settled = session.unsettled.remove(disposition.first, through: disposition.last ?? disposition.first)
            emulator.unsettled.add(-settled, ordering: .relaxed)
        case .detach(let detach):
            guard let session = sessions[channel], let link = session.links.removeValue(forKey: detach.handle) else { return }
            release(link)
            write(.frame(AMQPFrame(channel: channel, .detach(AMQPDetach(handle: link.handle, closed: true)))), flush: true)
        case .end:
            if let session = sessions.removeValue(forKey: channel) { for link in session.links.values { release(link) } }
            write(.frame(AMQPFrame(channel: channel, .end(AMQPEnd()))), flush: true)
        case .close:
            write(.frame(AMQPFrame(channel: 0, .close(AMQPClose()))), flush: true)
            phase = .closed
            context?.close(promise: nil)
        }
    }

    /// Answers an attach: the same name and handle, the other role, source and target echoed (pyamqp detaches
    /// when either is missing), and for a refusal a detach with the error right after.
    private func attach(_ attach: AMQPAttach, _ session: Session) {
        let sourceAddress = attach.source?.address ?? ""
        let targetAddress = attach.target?.address ?? ""
        var reply = AMQPAttach(
            name: attach.name, handle: attach.handle, role: attach.role == .sender ? .receiver : .sender,
            senderSettleMode: attach.senderSettleMode, receiverSettleMode: attach.receiverSettleMode,
            source: attach.source ?? AMQPSource(address: nil), target: attach.target ?? AMQPTarget(address: nil),
            initialDeliveryCount: attach.role == .receiver ? 0 : nil, maxMessageSize: UInt64(emulator.configuration.maxFrameSize) * 256,
            offeredCapabilities: attach.desiredCapabilities.filter { $0 == "com.microsoft:enable-receiver-runtime-metric" || $0 == "com.microsoft:georeplication" },
            properties: attach.properties
        )
        func refuse(_ condition: String, _ description: String) {
            write(.frame(AMQPFrame(channel: session.channel, .attach(reply))), flush: true)
            let detach = AMQPFrame(channel: session.channel, .detach(AMQPDetach(handle: attach.handle, closed: true, error: AMQPRemoteError(condition: condition, description: description))))
            emulator.log("refused link '\(attach.name)': \(condition): \(description)")
            let delay = emulator.faults.refusalDelay
            guard delay > 0, let eventLoop = context?.eventLoop else { return write(.frame(detach), flush: true) }
            // A late refusal: the client may detach meanwhile (unanswered, the link is not ours), and then takes
            // this detach as the answer to its own.
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.scheduleTask(in: .milliseconds(Int64(delay * 1000))) { bound.value.write(.frame(detach), flush: true) }
        }
        if emulator.faults.takeServerBusy() {
            return refuse("com.microsoft:server-busy", "The request was terminated because the server is busy (injected fault).")
        }
        let kind: LinkKind
        if attach.role == .sender {
            // The peer sends to us: $cbs or $management requests, or events to a hub.
            let path = Self.path(targetAddress)
            if path.lowercased() == "$cbs" {
                kind = .cbsRequests
            } else if path.lowercased() == "$management" || path.lowercased().hasSuffix("/$management") {
                kind = .managementRequests
            } else {
                let parts = path.split(separator: "/").map(String.init)
                guard let hubName = parts.first, let hub = emulator.store.hub(hubName) else {
                    return refuse("amqp:not-found", "The messaging entity '\(path)' could not be found.")
                }
                var partition: Int?
                if parts.count == 3, parts[1].lowercased() == "partitions" {
                    guard let p = Int(parts[2]), (0..<hub.partitions).contains(p) else {
                        return refuse("amqp:not-found", "Partition '\(parts[2])' of '\(hub.name)' does not exist.")
                    }
                    partition = p
                } else if parts.count != 1 {
                    return refuse("amqp:not-found", "The messaging entity '\(path)' could not be found.")
                }
                guard authorized("/" + hub.name.lowercased()) else {
                    return refuse("amqp:unauthorized-access", "Unauthorized access. 'Send' claim(s) are required to perform this operation (put a token on $cbs first).")
                }
                kind = .publisher(hub: hub.name, partition: partition)
            }
        } else {
            let path = Self.path(sourceAddress)
            if path.lowercased() == "$cbs" {
                kind = .cbsReplies
            } else if path.lowercased() == "$management" || path.lowercased().hasSuffix("/$management") {
                kind = .managementReplies
            } else {
                // <hub>/ConsumerGroups/<cg>/Partitions/<id>
                let parts = path.split(separator: "/").map(String.init)
                guard parts.count == 5, parts[1].lowercased() == "consumergroups", parts[3].lowercased() == "partitions" else {
                    return refuse("amqp:not-found", "The messaging entity '\(path)' could not be found.")
                }
                guard let hub = emulator.store.hub(parts[0]) else {
                    return refuse("amqp:not-found", "The messaging entity '\(parts[0])' could not be found.")
                }
                guard emulator.store.hasConsumerGroup(hub.name, parts[2]) else {
                    return refuse("amqp:not-found", "The consumer group '\(parts[2])' of '\(hub.name)' could not be found.")
                }
                guard let partition = Int(parts[4]), (0..<hub.partitions).contains(partition) else {
                    return refuse("amqp:not-found", "Partition '\(parts[4])' of '\(hub.name)' does not exist.")
                }
                guard authorized("/\(hub.name.lowercased())/consumergroups/\(parts[2].lowercased())") else {
                    return refuse("amqp:unauthorized-access", "Unauthorized access. 'Listen' claim(s) are required to perform this operation (put a token on $cbs first).")
                }
                var position = StartPosition.latest
                if let filter = attach.source?.filter?[text: "apache.org:selector-filter:string"] {
                    guard case .described(_, let value) = filter, let selector = value.text else {
                        return refuse("amqp:invalid-field", "The selector filter is not a described string.")
                    }
                    do { position = try StartPosition(selector: selector) } catch {
                        return refuse("amqp:invalid-field", error.description)
                    }
                }
                let start: Int64
                do { start = try emulator.store.startSequence(hub: hub.name, partition: partition, position: position) } catch {
                    return refuse("com.microsoft:argument-out-of-range", error.description)
                }
                let receiver = Receiver(
                    hub: hub.name, group: parts[2], partition: partition, nextSequence: start,
                    runtimeMetrics: attach.desiredCapabilities.contains("com.microsoft:enable-receiver-runtime-metric")
                )
                let epoch = attach.properties?[.symbol("com.microsoft:epoch")]?.int64Value
                let bound = NIOLoopBound((self, session.channel, attach.handle), eventLoop: context!.eventLoop)
                let eventLoop = context!.eventLoop
                let registered = emulator.owners.register(OwnerRegistry.key(hub.name, parts[2], partition), epoch: epoch) { why in
                    eventLoop.execute {
                        let (connection, channel, handle) = bound.value
                        connection.detach(channel: channel, handle: handle, condition: "amqp:link:stolen", description: why)
                    }
                }
                switch registered {
                case .success(let id): receiver.ownerID = id
                case .failure(let error): return refuse("amqp:link:stolen", error.description)
                }
                kind = .receiver(receiver)
            }
        }
        let link = Link(name: attach.name, handle: attach.handle, kind: kind)
        session.links[attach.handle] = link
        if case .receiver = kind { reply.properties = attach.properties }
        write(.frame(AMQPFrame(channel: session.channel, .attach(reply))))
        if attach.role == .sender { topUpCredit(link, session) }
        flush()
    }

    /// A detach we start (a stolen link); the link is forgotten.
    func detach(channel: UInt16, handle: UInt32, condition: String, description: String) {
        guard let session = sessions[channel], let link = session.links.removeValue(forKey: handle) else { return }
        release(link)
        let error = AMQPRemoteError(condition: condition, description: description)
        write(.frame(AMQPFrame(channel: channel, .detach(AMQPDetach(handle: handle, closed: true, error: error)))), flush: true)
    }

    private func release(_ link: Link) {
        guard case .receiver(let receiver) = link.kind else { return }
        if let id = receiver.ownerID { emulator.owners.unregister(OwnerRegistry.key(receiver.hub, receiver.group, receiver.partition), id: id) }
        if let waiter = receiver.waiter { emulator.store.cancelWait(hub: receiver.hub, partition: receiver.partition, waiter: waiter) }
        receiver.ownerID = nil
        receiver.waiter = nil
    }

    // MARK: Incoming messages

    private func receive(_ transfer: AMQPTransfer, payload: ByteBuffer, _ link: Link, _ session: Session) {
        guard let delivery = link.assembler.add(transfer, payload: payload) else { return }
        link.current = delivery
        let bytes = delivery.payload
        link.deliveryCount &+= 1
        link.creditGiven = link.creditGiven > 0 ? link.creditGiven - 1 : 0
        let message: AMQPMessage
        do { message = try AMQPMessage(from: bytes) } catch {
            return settle(link, session, .rejected(AMQPRemoteError(condition: "amqp:decode-error", description: error.message)))
        }
        switch link.kind {
        case .cbsRequests:
            reply(to: message, on: session, kind: .cbsReplies, putToken(message))
            settle(link, session, .accepted)
        case .managementRequests:
            reply(to: message, on: session, kind: .managementReplies, management(message))
            settle(link, session, .accepted)
        case .publisher(let hub, let partition):
            publish(message, format: delivery.messageFormat, hub: hub, partition: partition, link, session)
        default:
            protocolError("a transfer on a link that sends")
        }
        topUpCredit(link, session)
    }

    private func settle(_ link: Link, _ session: Session, _ state: AMQPDeliveryState) {
        guard let delivery = link.current, !delivery.settled, let id = delivery.deliveryID else { return }
        write(.frame(AMQPFrame(channel: session.channel, .disposition(AMQPDisposition(role: .receiver, first: id, settled: true, state: state)))), flush: true)
    }

    private func topUpCredit(_ link: Link, _ session: Session) {
        guard link.creditGiven < 500 else { return }
        link.creditGiven = 1000
        write(.frame(AMQPFrame(channel: session.channel, .flow(AMQPFlow(
            nextIncomingID: nil, incomingWindow: 1 << 30, nextOutgoingID: session.nextOutgoingID, outgoingWindow: 1 << 30,
            handle: link.handle, deliveryCount: link.deliveryCount, linkCredit: 1000
        )))), flush: true)
    }

    private func publish(_ message: AMQPMessage, format: UInt32, hub: String, partition: Int?, _ link: Link, _ session: Session) {
        if emulator.faults.takeServerBusy() {
            return settle(link, session, .rejected(AMQPRemoteError(condition: "com.microsoft:server-busy", description: "The server is busy (injected fault).")))
        }
        var events: [(message: AMQPMessage, partitionKey: String?)] = []
        func key(_ m: AMQPMessage) -> String? { m.messageAnnotations?[.symbol("x-opt-partition-key")]?.text }
        if format == AMQPMessage.batchFormat {
            let batchKey = key(message)
            do {
                for inner in try message.unbatched() { events.append((inner, key(inner) ?? batchKey)) }
            } catch {
                return settle(link, session, .rejected(AMQPRemoteError(condition: "amqp:decode-error", description: "a batch envelope holds a broken message: \(error.message)")))
            }
        } else {
            events.append((message, key(message)))
        }
        do {
            let used = try emulator.store.append(hub: hub, partition: partition, messages: events)
            emulator.log("\(events.count) event(s) to \(hub)/\(used)")
            settle(link, session, .accepted)
        } catch {
            settle(link, session, .rejected(AMQPRemoteError(condition: "amqp:not-found", description: error.description)))
        }
    }

    /// Answers a request on the session's reply link for `kind` (`correlation-id` = the request's `message-id`).
    private func reply(to request: AMQPMessage, on session: Session, kind: LinkKind, _ answer: (status: Int32, description: String, body: AMQPValue?)) {
        var properties = AMQPMessageProperties()
        properties.messageID = .uuid(UUID())
        properties.correlationID = request.properties?.messageID ?? .null
        properties.to = request.properties?.replyTo
        let response = AMQPMessage(
            properties: properties,
            applicationProperties: ["status-code": .int(answer.status), "status-description": .string(answer.description)],
            body: answer.body.map { .value($0) } ?? .empty
        )
        let wanted: (LinkKind) -> Bool = { if case .cbsReplies = kind, case .cbsReplies = $0 { true } else if case .managementReplies = kind, case .managementReplies = $0 { true } else { false } }
        guard let link = session.links.values.first(where: { wanted($0.kind) }) else {
            emulator.log("no reply link for a request; answer dropped")
            return
        }
        link.queued.append(response)
        pump(link, session)
    }

    /// `put-token` on `$cbs`: checks the signature against the configured keys, the expiry and the audience.
    private func putToken(_ message: AMQPMessage) -> (status: Int32, description: String, body: AMQPValue?) {
        if emulator.faults.takeServerBusy() { return (503, "The server is busy (injected fault).", nil) }
        let app = message.applicationProperties ?? [:]
        guard app[text: "operation"]?.text == "put-token" else { return (400, "Unsupported operation '\(app[text: "operation"]?.text ?? "")'.", nil) }
        guard app[text: "type"]?.text == "servicebus.windows.net:sastoken" else {
            return (401, "Only shared access signatures are supported by the emulator (type '\(app[text: "type"]?.text ?? "")').", nil)
        }
        guard case .value(let body) = message.body, let tokenText = body.text else { return (400, "The token is missing from the body.", nil) }
        switch check(tokenText, audience: app[text: "name"]?.text) {
        case .success(let (path, expiry)):
            tokens.removeAll { $0.path == path }
            tokens.append((path, expiry))
            return (200, "OK", nil)
        case .failure(let why):
            emulator.log("token refused: \(why)")
            return (401, why.description, nil)
        }
    }

    /// The audience path of a valid token, or why it is not valid.
    private func check(_ token: String, audience: String?) -> Result<(String, Int64), EmulatorTokenError> {
        let sas: SharedAccessSignature
        do { sas = try SharedAccessSignature(parsing: token) } catch { return .failure(EmulatorTokenError("InvalidSignature: \(error.message)")) }
        guard let key = emulator.configuration.keys[sas.keyName] else {
            return .failure(EmulatorTokenError("InvalidSignature: the key name '\(sas.keyName)' is not known."))
        }
        guard sas.isSigned(with: key) else { return .failure(EmulatorTokenError("InvalidSignature: The token has an invalid signature.")) }
        guard sas.expiry * 1000 > EventStore.now() else { return .failure(EmulatorTokenError("ExpiredToken: The token has expired.")) }
        if let audience, Self.path(audience).lowercased() != Self.path(sas.audience).lowercased() {
            return .failure(EmulatorTokenError("InvalidAudience: the token is for '\(sas.audience)', not '\(audience)'."))
        }
        return .success(("/" + Self.path(sas.audience).lowercased(), sas.expiry))
    }

    /// Whether a token put on this connection (and not expired) covers `resource` (a lower-case path).
    private func authorized(_ resource: String) -> Bool {
        let now = EventStore.now() / 1000
        return tokens.contains { $0.expiry > now && (resource == $0.path || resource.hasPrefix($0.path + "/") || $0.path == "/") }
    }

    /// `READ` on `$management`: event hub and partition properties.
    private func management(_ message: AMQPMessage) -> (status: Int32, description: String, body: AMQPValue?) {
        if emulator.faults.takeServerBusy() { return (503, "The server is busy (injected fault).", nil) }
        let app = message.applicationProperties ?? [:]
        guard app[text: "operation"]?.text == "READ" else { return (400, "Unsupported operation '\(app[text: "operation"]?.text ?? "")'.", nil) }
        guard let name = app[text: "name"]?.text, let hub = emulator.store.hub(name) else {
            return (404, "The messaging entity '\(app[text: "name"]?.text ?? "")' could not be found.", nil)
        }
        guard let token = app[text: "security_token"]?.text else { return (401, "Unauthorized: the security_token is missing.", nil) }
        switch check(token, audience: nil) {
        case .failure(let why): return (401, why.description, nil)
        case .success(let (path, _)):
            let resource = "/" + hub.name.lowercased()
            guard resource == path || resource.hasPrefix(path + "/") || path == "/" else { return (401, "Unauthorized: the token does not cover '\(hub.name)'.", nil) }
        }
        let now = EventStore.now()
        switch app[text: "type"]?.text {
        case "com.microsoft:eventhub":
            return (200, "OK", .map([
                "name": .string(hub.name), "created_at": .timestamp(hub.createdAt), "partition_count": .int(Int32(hub.partitions)),
                "partition_ids": .array(.strings((0..<hub.partitions).map(String.init))), "type": .string("com.microsoft:eventhub"),
                "georeplication_factor": .int(1),
            ]))
        case "com.microsoft:partition":
            guard let id = app[text: "partition"]?.text, let partition = Int(id), let info = emulator.store.partitionInfo(hub: hub.name, partition: partition) else {
                return (404, "The partition '\(app[text: "partition"]?.text ?? "")' of '\(hub.name)' could not be found.", nil)
            }
            return (200, "OK", .map([
                "name": .string(hub.name), "partition": .string(id), "type": .string("com.microsoft:partition"),
                "begin_sequence_number": .long(info.begin), "last_enqueued_sequence_number": .long(info.last?.sequenceNumber ?? -1),
                "last_enqueued_offset": .string(String(info.last?.offset ?? -1)), "last_enqueued_time_utc": .timestamp(info.last?.enqueuedTime ?? 0),
                "is_partition_empty": .boolean(info.empty), "runtime_info_retrieval_time_utc": .timestamp(now),
            ]))
        default:
            return (400, "Unsupported type '\(app[text: "type"]?.text ?? "")'.", nil)
        }
    }

    // MARK: Outgoing messages

    /// Sends what a sender link may: queued replies, or a partition's events, while the peer gives credit.
    func pump(_ link: Link, _ session: Session) {
        guard phase == .open else { return }
        switch link.kind {
        case .cbsReplies, .managementReplies:
            while link.credit > 0, !link.queued.isEmpty {
                send(link.queued.removeFirst(), on: link, session)
            }
            flush()
        case .receiver(let receiver):
            guard link.credit > 0, receiver.waiter == nil else { return }
            if let remaining = emulator.faults.stallRemaining {
                // Every link that wanted to send during the stall is pumped again when it ends.
                if !stalled.contains(where: { $0 == (session.channel, link.handle) }) { stalled.append((session.channel, link.handle)) }
                if stallTimer == nil, let context {
                    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                    stallTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(remaining * 1000) + 1)) {
                        let connection = bound.value
                        connection.stallTimer = nil
                        let waiting = connection.stalled
                        connection.stalled.removeAll()
                        for (channel, handle) in waiting {
                            if let session = connection.sessions[channel], let link = session.links[handle] { connection.pump(link, session) }
                        }
                    }
                }
                return
            }
            let bound = NIOLoopBound((self, session.channel, link.handle), eventLoop: context!.eventLoop)
            let eventLoop = context!.eventLoop
            let (events, last, waiter) = emulator.store.read(hub: receiver.hub, partition: receiver.partition, from: receiver.nextSequence, limit: Int(min(link.credit, 1000))) {
                eventLoop.execute {
                    let (connection, channel, handle) = bound.value
                    guard let session = connection.sessions[channel], let link = session.links[handle], case .receiver(let r) = link.kind else { return }
                    r.waiter = nil
                    connection.pump(link, session)
                }
            }
            receiver.waiter = waiter
            if let final = events.last {
                send(events, last: receiver.runtimeMetrics ? last : nil, on: link, session)
                receiver.nextSequence = final.sequenceNumber + 1
            }
            flush()
            if !events.isEmpty && link.credit > 0 {
                // More may be there already: go on after the writes.
                let again = NIOLoopBound((self, session.channel, link.handle), eventLoop: eventLoop)
                eventLoop.execute {
                    let (connection, channel, handle) = again.value
                    if let session = connection.sessions[channel], let link = session.links[handle] { connection.pump(link, session) }
                }
            }
        default:
            return
        }
    }

    /// Sends events, one delivery each. Those that fit a frame (all, but for huge events or a tiny max-frame-size)
    /// are encoded straight into one buffer, transfer by transfer, which goes out as one write: no frame values, no
    /// buffer per frame, no copy of each event into a delivery buffer first.
    private func send(_ events: [StoredEvent], last: StoredEvent?, on link: Link, _ session: Session) {
        guard let context else { return }
        // Room for the transfer frame's header and performative (at most 8 + 3 + 2 + 28 bytes).
        let room = Int(min(peerMaxFrameSize, 1 << 20)) - 64
        let now = EventStore.now()
        var batch = context.channel.allocator.buffer(capacity: events.reduce(0) { $0 + 64 + $1.deliverySizeBound(withMetrics: last != nil) })
        var batched = 0
        for event in events {
            guard event.deliverySizeBound(withMetrics: last != nil) <= room else {
                // Split across frames by the general path, in order after what is batched so far.
                if batch.readableBytes > 0 {
                    write(.encoded(batch))
                    batch = context.channel.allocator.buffer(capacity: 0)
                }
                send(event.delivery(last: last, now: now), on: link, session)
                continue
            }
            let id = session.nextOutgoingID
            session.nextOutgoingID &+= 1
            batch.writeTransferFrame(channel: session.channel, handle: link.handle, deliveryID: id, deliveryTag: link.deliveryCount, messageFormat: 0, settled: false) {
                event.writeDelivery(into: &$0, last: last, now: now)
            }
            link.deliveryCount &+= 1
            link.credit -= 1
            session.unsettled.insert(id)
            batched += 1
        }
        if batch.readableBytes > 0 { write(.encoded(batch)) }
        emulator.unsettled.add(batched, ordering: .relaxed)
    }

    private func send(_ message: AMQPMessage, on link: Link, _ session: Session) {
        send(message.encoded, on: link, session)
    }

    private func send(_ payload: ByteBuffer, on link: Link, _ session: Session) {
        let id = session.nextOutgoingID
        session.nextOutgoingID &+= 1
        var tag = ByteBuffer()
        tag.writeInteger(link.deliveryCount, endianness: .big)
        let transfer = AMQPTransfer(handle: link.handle, deliveryID: id, deliveryTag: Array(tag.readableBytesView), messageFormat: 0, settled: false)
        for frame in AMQPFrame.transfers(channel: session.channel, transfer, payload: payload, maxFrameSize: min(peerMaxFrameSize, 1 << 20)) {
            write(.frame(frame))
        }
        link.deliveryCount &+= 1
        link.credit -= 1
        session.unsettled.insert(id)
        emulator.unsettled.add(1, ordering: .relaxed)
    }

    private func sendFlow(_ link: Link, _ session: Session, drain: Bool = false) {
        write(.frame(AMQPFrame(channel: session.channel, .flow(AMQPFlow(
            nextIncomingID: nil, incomingWindow: 1 << 30, nextOutgoingID: session.nextOutgoingID, outgoingWindow: 1 << 30,
            handle: link.handle, deliveryCount: link.deliveryCount, linkCredit: link.credit, drain: drain
        )))), flush: true)
    }

    // MARK: Helpers

    /// The path of an address: `amqps://host/eh1/ConsumerGroups/$Default/Partitions/0` → `eh1/ConsumerGroups/...`,
    /// `sb://host/eh1` → `eh1`, `$cbs` → `$cbs`.
    static func path(_ address: String) -> String {
        var rest = Substring(address)
        if let scheme = rest.range(of: "://") {
            rest = rest[scheme.upperBound...]
            rest = rest.firstIndex(of: "/").map { rest[rest.index(after: $0)...] } ?? ""
        }
        while rest.hasPrefix("/") { rest = rest.dropFirst() }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        return String(rest)
    }

    private func write(_ item: AMQPWireItem, flush: Bool = false) {
        guard let context else { return }
        if flush { context.writeAndFlush(wrapOutboundOut(item), promise: nil) } else { context.write(wrapOutboundOut(item), promise: nil) }
    }

    private func flush() { context?.flush() }

    private func protocolError(_ description: String) {
        emulator.log("protocol error: \(description)")
        closeConnection(condition: "amqp:not-allowed", description: description)
    }

    private func closeConnection(condition: String, description: String) {
        guard phase != .closed, let context else { return }
        if phase == .open || phase == .awaitingOpen {
            write(.frame(AMQPFrame(channel: 0, .close(AMQPClose(error: AMQPRemoteError(condition: condition, description: description))))), flush: true)
        }
        phase = .closed
        context.close(promise: nil)
    }
}

struct EmulatorTokenError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Delivery ids sent unsettled, as runs of consecutive ids: a session numbers its deliveries in order and clients
/// settle them in ranges, so a few runs hold what a set would hold id by id (a set's insert and remove were a tenth
/// of the emulator's time when it sent events).
struct UnsettledDeliveries {
    /// In the order the ids were sent.
    private(set) var runs: [ClosedRange<UInt32>] = []
    private(set) var count = 0

    /// Adds the next id sent (one more than the last, but after a wrap past UInt32.max).
    mutating func insert(_ id: UInt32) {
        count += 1
        if let last = runs.last, last.upperBound != .max, last.upperBound + 1 == id {
            runs[runs.count - 1] = last.lowerBound...id
        } else {
            runs.append(id...id)
        }
    }

    /// Removes the ids `first` through `last` (wrapping past UInt32.max when `last` is below `first`, as delivery ids
    /// are serial numbers); returns how many of them were unsettled.
    mutating func remove(_ first: UInt32, through last: UInt32) -> Int {
        if last < first { return remove(first, through: .max) + remove(0, through: last) }
        guard runs.contains(where: { $0.overlaps(first...last) }) else { return 0 }
        var removed = 0
        var kept: [ClosedRange<UInt32>] = []
        kept.reserveCapacity(runs.count + 1)
        for run in runs {
            guard run.overlaps(first...last) else {
                kept.append(run)
                continue
            }
            let low = max(run.lowerBound, first), high = min(run.upperBound, last)
            removed += Int(high - low) + 1
            if run.lowerBound < low { kept.append(run.lowerBound...(low - 1)) }
            if high < run.upperBound { kept.append((high + 1)...run.upperBound) }
        }
        runs = kept
        count -= removed
        return removed
    }
}
