import Foundation
import NIOCore
import SluiceAMQP
import Testing

func frameBytes(_ frame: AMQPFrame) -> [UInt8] {
    var buffer = ByteBuffer()
    frame.encode(into: &buffer)
    return Array(buffer.readableBytesView)
}

func decodeFrame(_ bytes: [UInt8], maxFrameSize: UInt32 = 1 << 20) throws -> AMQPFrame? {
    var buffer = ByteBuffer(bytes: bytes)
    return try AMQPFrame.decode(from: &buffer, maxFrameSize: maxFrameSize)
}

/// Performatives, SASL frames and frames: the bytes the protocol notes record, full-length lists on the way out,
/// short lists and `list0` accepted on the way in.
@Suite(.timeLimit(.minutes(1)))
struct AMQPPerformativeTests {
    @Test func protocolHeaders() {
        #expect(AMQPProtocolHeader.sasl.bytes == hex("41 4D 51 50 03 01 00 00"))
        #expect(AMQPProtocolHeader.amqp.bytes == hex("41 4D 51 50 00 01 00 00"))
        #expect(AMQPProtocolHeader(bytes: hex("41 4D 51 50 03 01 00 00")) == .sasl)
        #expect(AMQPProtocolHeader(bytes: hex("48 54 54 50 2f 31 2e 31")) == nil, "HTTP is not AMQP")
        #expect(AMQPProtocolHeader(bytes: hex("41 4D 51 50 00 00 09 01")) == nil, "AMQP 0-9-1 is not 1.0")
    }

    @Test func theHeartbeatFrame() throws {
        #expect(frameBytes(.heartbeat) == hex("00 00 00 08 02 00 00 00"))
        #expect(try decodeFrame(hex("00 00 00 08 02 00 00 00")) == .heartbeat)
    }

    @Test func openIsWrittenWithAllTenFields() throws {
        let open = AMQPPerformative.open(AMQPOpen(containerID: "c"))
        #expect(encoded(open.amqpValue) == hex("00 53 10 c0 0d 0a a1 01 63 40 40 40 40 40 40 40 40 40"))
        let frame = AMQPFrame(channel: 0, open)
        #expect(frameBytes(frame) == hex("00 00 00 1a 02 00 00 00 00 53 10 c0 0d 0a a1 01 63 40 40 40 40 40 40 40 40 40"))
        #expect(try decodeFrame(frameBytes(frame)) == frame)
    }

    @Test func shortListsAndList0AreAccepted() throws {
        // open with only its container-id (AMQP part 1.4: trailing nulls may be omitted)
        let open = try AMQPPerformative(decoded(hex("00 53 10 c0 04 01 a1 01 63")))
        #expect(open == .open(AMQPOpen(containerID: "c")))
        // begin: remote-channel null, next-outgoing-id 0, incoming-window 2048, outgoing-window 100
        let begin = try AMQPPerformative(decoded(hex("00 53 11 c0 0a 04 40 43 70 00 00 08 00 52 64")))
        #expect(begin == .begin(AMQPBegin(nextOutgoingID: 0, incomingWindow: 2048, outgoingWindow: 100)))
        // end and close as list0
        #expect(try AMQPPerformative(decoded(hex("00 53 17 45"))) == .end(AMQPEnd()))
        #expect(try AMQPPerformative(decoded(hex("00 53 18 45"))) == .close(AMQPClose()))
        // a descriptor given by name
        #expect(try AMQPPerformative(decoded(hex("00 a3 0d") + Array("amqp:end:list".utf8) + hex("45"))) == .end(AMQPEnd()))
    }

    @Test func aMissingMandatoryFieldIsNamed() throws {
        do {
            _ = try AMQPPerformative(decoded(hex("00 53 11 c0 02 01 40")))
            Issue.record("begin without next-outgoing-id decoded")
        } catch let error as AMQPError {
            #expect(error.code == .missingField)
            #expect(error.message == "amqp:begin:list: field 1 'next-outgoing-id' is mandatory but absent")
        }
        do {
            _ = try AMQPPerformative(decoded(hex("00 53 10 c0 03 01 52 01")))
            Issue.record("open with a numeric container-id decoded")
        } catch let error as AMQPError {
            #expect(error.message == "amqp:open:list: field 0 'container-id' should be a string, not uint")
        }
    }

    /// The receiver attach pyamqp sends, as recorded in the protocol notes, survives a round trip with every field.
    @Test func anEventHubsReceiverAttach() throws {
        let selector = "amqp.annotation.x-opt-offset > '-1'"
        let filterName = "apache.org:selector-filter:string"
        let attach = AMQPAttach(
            name: "receiver-1", handle: 3, role: .receiver, senderSettleMode: 0, receiverSettleMode: 0,
            source: AMQPSource(
                address: "amqps://host/eh1/ConsumerGroups/$Default/Partitions/0",
                filter: [.symbol(filterName): .described(descriptor: .symbol(filterName), value: .string(selector))]
            ),
            target: AMQPTarget(address: "receiver-link-1"), maxMessageSize: 1 << 20,
            desiredCapabilities: ["com.microsoft:georeplication"],
            properties: [.symbol("com.microsoft:epoch"): .long(7), .symbol("com.microsoft:timeout"): .long(0)]
        )
        let frame = AMQPFrame(channel: 1, .attach(attach))
        let bytes = frameBytes(frame)
        #expect(try decodeFrame(bytes) == frame)
        // role true (receiver), then the source composite with its 11 fields
        let body = Array(bytes.dropFirst(8))
        #expect(body.prefix(3) == [0x00, 0x53, 0x12])
        #expect(bytes.count == Int(UInt32(bigEndian: bytes.withUnsafeBytes { $0.load(as: UInt32.self) })))
        guard case .attach(let back) = try AMQPPerformative(decoded(body)) else { Issue.record("not an attach"); return }
        #expect(back.source?.filter?[text: filterName] == .described(descriptor: .symbol(filterName), value: .string(selector)))
        #expect(back.desiredCapabilities == ["com.microsoft:georeplication"])
        #expect(back.initialDeliveryCount == nil, "a receiver leaves it out")
    }

    @Test func everyPerformativeRoundTrips() throws {
        let performatives: [AMQPPerformative] = [
            .open(AMQPOpen(containerID: "x", hostname: "h", maxFrameSize: 65536, channelMax: 255, idleTimeout: 30000, properties: [.symbol("p"): "v"])),
            .begin(AMQPBegin(remoteChannel: 1, nextOutgoingID: 1, incomingWindow: 5000, outgoingWindow: 100, handleMax: 255)),
            .flow(AMQPFlow(nextIncomingID: 4, incomingWindow: 5000, nextOutgoingID: 1, outgoingWindow: 100, handle: 3, deliveryCount: 0, linkCredit: 300)),
            .transfer(AMQPTransfer(handle: 3, deliveryID: 9, deliveryTag: [0, 0, 0, 1], messageFormat: 0, settled: false, more: true)),
            .disposition(AMQPDisposition(role: .receiver, first: 9, last: 12, settled: true, state: .accepted)),
            .disposition(AMQPDisposition(role: .receiver, first: 1, settled: true, state: .rejected(AMQPRemoteError(condition: "amqp:internal-error", description: "no")))),
            .disposition(AMQPDisposition(role: .receiver, first: 1, settled: true, state: .modified(deliveryFailed: true, undeliverableHere: false, messageAnnotations: nil))),
            .detach(AMQPDetach(handle: 3, closed: true, error: AMQPRemoteError(condition: "amqp:link:stolen", description: "epoch 2 > 1"))),
            .end(AMQPEnd(error: AMQPRemoteError(condition: "amqp:session:window-violation"))),
            .close(AMQPClose(error: AMQPRemoteError(condition: "amqp:connection:forced", info: [.symbol("k"): .uint(1)]))),
        ]
        for performative in performatives {
            let value = performative.amqpValue
            #expect(try AMQPPerformative(decoded(encoded(value))) == performative, "\(performative.name)")
        }
    }

    @Test func saslFrames() throws {
        let mechanisms = AMQPFrame(sasl: .mechanisms(SASLMechanisms(mechanisms: ["ANONYMOUS", "MSSBCBS", "PLAIN"])))
        #expect(try decodeFrame(frameBytes(mechanisms)) == mechanisms)
        #expect(frameBytes(mechanisms)[5] == 1, "frame type 1 is SASL")
        let initial = AMQPFrame(sasl: .initial(SASLInit(mechanism: "ANONYMOUS", initialResponse: [], hostname: "127.0.0.1")))
        #expect(try decodeFrame(frameBytes(initial)) == initial)
        let outcome = AMQPFrame(sasl: .outcome(SASLOutcome(code: 0)))
        #expect(frameBytes(outcome) == hex("00 00 00 11 02 01 00 00 00 53 44 c0 04 02 50 00 40"))
        // A single mechanism may come as a bare symbol instead of an array.
        let one = try SASLFrameBody(decoded(hex("00 53 40 c0 0c 01 a3 09") + Array("ANONYMOUS".utf8)))
        #expect(one == .mechanisms(SASLMechanisms(mechanisms: ["ANONYMOUS"])))
    }

    @Test func framesAreCheckedAgainstTheMaximumSize() throws {
        let transfer = AMQPFrame(channel: 1, .transfer(AMQPTransfer(handle: 0, deliveryID: 0, deliveryTag: [1])), payload: ByteBuffer(bytes: [UInt8](repeating: 1, count: 1000)))
        let bytes = frameBytes(transfer)
        #expect(try decodeFrame(bytes) == transfer)
        #expect(try decodeFrame(Array(bytes.prefix(100))) == nil, "a partial frame waits for more bytes")
        #expect(throws: AMQPError.self) { try decodeFrame(bytes, maxFrameSize: 512) }
        #expect(throws: AMQPError.self) { try decodeFrame(hex("00 00 00 08 01 00 00 00")) }  // data offset 1
        #expect(throws: AMQPError.self) { try decodeFrame(hex("00 00 00 04 02 00 00 00")) }  // size below the header
        #expect(throws: AMQPError.self) { try decodeFrame(hex("00 00 00 08 02 07 00 00")) }  // frame type 7
    }
}

/// Messages and Event Hubs batch envelopes.
@Suite(.timeLimit(.minutes(1)))
struct AMQPMessageTests {
    /// The inner message of the batch seen on the wire (protocol notes A4): application properties {"i": 0} and the
    /// body "p0-event-0"; the envelope's data section holds its 26 bytes.
    @Test func theBatchEnvelopeSeenOnTheWire() throws {
        let event = AMQPMessage(applicationProperties: ["i": .int(0)], body: .data([Array("p0-event-0".utf8)]))
        let inner = Array(event.encoded.readableBytesView)
        #expect(inner == hex("00 53 74 c1 06 02 a1 01 69 54 00 | 00 53 75 a0 0a") + Array("p0-event-0".utf8))
        #expect(inner.count == 26)
        let envelope = AMQPMessage.batch([event, event])
        let bytes = Array(envelope.encoded.readableBytesView)
        #expect(Array(bytes.prefix(5)) == hex("00 53 75 a0 1a"))
        let back = try AMQPMessage(from: ByteBuffer(bytes: bytes))
        #expect(try back.unbatched() == [event, event])
    }

    @Test func everySectionRoundTrips() throws {
        var properties = AMQPMessageProperties()
        properties.messageID = .uuid(UUID())
        properties.correlationID = .string("abc")
        properties.contentType = "application/json"
        properties.creationTime = 1_700_000_000_000
        let message = AMQPMessage(
            header: AMQPMessageHeader(durable: true),
            deliveryAnnotations: ["last_enqueued_sequence_number": .long(41)],
            messageAnnotations: [.symbol("x-opt-sequence-number"): .long(7), .symbol("x-opt-offset"): "4096", .symbol("x-opt-enqueued-time"): .timestamp(1_700_000_000_123)],
            properties: properties,
            applicationProperties: ["operation": "put-token"],
            body: .value(.string("SharedAccessSignature sr=...")),
            footer: ["f": .null]
        )
        #expect(try AMQPMessage(from: message.encoded) == message)
        let properties13 = encoded(properties.amqpValue)
        #expect(properties13[3] == 0xc0 && properties13[5] == 13, "properties are written with all 13 fields")
        let empty = AMQPMessage(applicationProperties: ["operation": "READ"])
        #expect(try AMQPMessage(from: empty.encoded).body == .empty)
    }

    @Test func sectionsOutOfOrderAreRefused() throws {
        var buffer = ByteBuffer()
        buffer.writeAMQPValue(.described(descriptor: .ulong(0x75), value: .binary([1])))
        buffer.writeAMQPValue(.described(descriptor: .ulong(0x74), value: .map([:])))
        #expect(throws: AMQPError.self) { try AMQPMessage(from: buffer) }
        var notSection = ByteBuffer()
        notSection.writeAMQPValue(.string("raw"))
        #expect(throws: AMQPError.self) { try AMQPMessage(from: notSection) }
    }
}

/// The Event Hubs messages of the protocol notes, byte for byte.
@Suite(.timeLimit(.minutes(1)))
struct EventHubsMessageBytesTests {
    static func ascii(_ text: String) -> String { Array(text.utf8).map { String(format: "%02x", $0) }.joined() }

    /// A `$cbs` put-token request as the client builds it: properties (13 fields, a uuid message-id), application
    /// properties with string keys and a timestamp expiration, and the token as an `amqp-value` string.
    @Test func aPutTokenRequest() {
        var properties = AMQPMessageProperties()
        properties.messageID = .uuid(UUID(uuid: (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)))
        let request = AMQPMessage(
            properties: properties,
            applicationProperties: [
                "operation": "put-token", "type": "servicebus.windows.net:sastoken", "name": "sb://h/e", "expiration": .timestamp(1000),
            ],
            body: .value("token")
        )
        let expected =
            "00 53 73 c0 1e 0d 98 000102030405060708090a0b0c0d0e0f" + String(repeating: " 40", count: 12)
            + " 00 53 74 c1 63 08"
            + " a1 09 \(Self.ascii("operation")) a1 09 \(Self.ascii("put-token"))"
            + " a1 04 \(Self.ascii("type")) a1 1f \(Self.ascii("servicebus.windows.net:sastoken"))"
            + " a1 04 \(Self.ascii("name")) a1 08 \(Self.ascii("sb://h/e"))"
            + " a1 0a \(Self.ascii("expiration")) 83 00 00 00 00 00 00 03 e8"
            + " 00 53 77 a1 05 \(Self.ascii("token"))"
        #expect(Array(request.encoded.readableBytesView) == hex(expected))
    }

    /// The selector filter with either descriptor the SDKs use: the symbol (pyamqp, proton) or the ulong
    /// 0x0000468C00000004 (Go, JS, C++).
    @Test func selectorFiltersWithEitherDescriptor() throws {
        let name = "apache.org:selector-filter:string"
        let selector = "amqp.annotation.x-opt-sequence-number > '41'"
        let bySymbol = "00 a3 21 \(Self.ascii(name)) a1 2c \(Self.ascii(selector))"
        #expect(encoded(.described(descriptor: .symbol(name), value: .string(selector))) == hex(bySymbol))
        let byCode = "00 80 00 00 46 8c 00 00 00 04 a1 2c \(Self.ascii(selector))"
        #expect(try decoded(hex(byCode)) == .described(descriptor: .ulong(0x0000_468C_0000_0004), value: .string(selector)))
        // Inside a source's filter map, keyed by the symbol.
        let source = AMQPSource(address: "eh1/ConsumerGroups/$Default/Partitions/0", filter: [.symbol(name): try decoded(hex(byCode))])
        let back = try AMQPSource(decoded(encoded(source.amqpValue)))
        #expect(back.filter?[text: name] == .described(descriptor: .ulong(0x0000_468C_0000_0004), value: .string(selector)))
    }

    /// The flow a receiver sends to grant credit: all 11 fields, link-credit 300 (the SDK's prefetch).
    @Test func aCreditFlow() {
        let flow = AMQPPerformative.flow(AMQPFlow(nextIncomingID: nil, incomingWindow: 65536, nextOutgoingID: 0, outgoingWindow: 65536, handle: 3, deliveryCount: 0, linkCredit: 300))
        #expect(encoded(flow.amqpValue) == hex("00 53 13 c0 19 0b 40 70 00 01 00 00 43 70 00 01 00 00 52 03 43 70 00 00 01 2c 40 42 42 40"))
    }
}

/// Splitting a message across transfer frames: every frame within the maximum, the payload intact, the fields on
/// the first frame only, `more` on all but the last.
@Suite(.timeLimit(.minutes(1)))
struct TransferSplittingTests {
    @Test(arguments: [512, 600, 4096])
    func framesStayWithinTheMaximumSize(maxFrameSize: Int) throws {
        let payload = ByteBuffer(bytes: (0..<10_000).map { UInt8($0 % 251) })
        let transfer = AMQPTransfer(handle: 7, deliveryID: 3, deliveryTag: [0, 0, 0, 9], messageFormat: 0, settled: false)
        let frames = AMQPFrame.transfers(channel: 1, transfer, payload: payload, maxFrameSize: UInt32(maxFrameSize))
        #expect(frames.count > 1)
        var joined = ByteBuffer()
        for (index, frame) in frames.enumerated() {
            #expect(frameBytes(frame).count <= maxFrameSize, "frame \(index) of \(frames.count)")
            guard case .amqp(.transfer(let t)) = frame.body else { Issue.record("not a transfer"); return }
            #expect(t.more == (index < frames.count - 1))
            #expect(t.handle == 7)
            #expect((t.deliveryID != nil) == (index == 0))
            var chunk = frame.payload
            joined.writeBuffer(&chunk)
        }
        #expect(joined == payload)
        // And the assembler puts the frames back together, with the first frame's fields.
        var assembler = AMQPTransferAssembler()
        var delivered: [AMQPTransferAssembler.Delivery] = []
        for frame in frames {
            guard case .amqp(.transfer(let t)) = frame.body else { continue }
            if let delivery = assembler.add(t, payload: frame.payload) { delivered.append(delivery) }
        }
        #expect(delivered.count == 1 && delivered.first?.payload == payload && delivered.first?.deliveryID == 3)
        #expect(delivered.first?.settled == false && !assembler.inProgress)
        // An aborted delivery is dropped.
        guard case .amqp(.transfer(let first)) = frames[0].body else { return }
        _ = assembler.add(first, payload: frames[0].payload)
        var abort = AMQPTransfer(handle: 7)
        abort.aborted = true
        #expect(assembler.add(abort, payload: ByteBuffer()) == nil && !assembler.inProgress)
        // A message that fits goes in one frame, however tight.
        let small = ByteBuffer(bytes: [UInt8](repeating: 1, count: maxFrameSize - 64 - 4))
        let one = AMQPFrame.transfers(channel: 1, transfer, payload: small, maxFrameSize: UInt32(maxFrameSize))
        #expect(one.count == 1 && frameBytes(one[0]).count <= maxFrameSize)
    }
}
