import Foundation
import NIOCore
import SluiceAMQP
import SluiceEventHubs
import Testing

/// `ReceivedEvent`, which reads only what a source needs from a delivery, against the full decoding of the same bytes
/// (`event()`): the same sequence number, time, partition key and body for every shape of event, the same refusals.
@Suite(.timeLimit(.minutes(1)))
struct ReceivedEventTests {
    static func annotations(_ sequence: Int64, key: String? = nil) -> AMQPMap {
        var map: AMQPMap = [
            .symbol("x-opt-sequence-number"): .long(sequence), .symbol("x-opt-offset"): .string("\(sequence * 1000)"),
            .symbol("x-opt-enqueued-time"): .timestamp(1_700_000_000_000 + sequence),
        ]
        if let key { map[.symbol("x-opt-partition-key")] = .string(key) }
        return map
    }

    static let messages: [(String, AMQPMessage)] = {
        var properties = AMQPMessageProperties()
        properties.messageID = .string("m-1")
        properties.contentType = "text/plain"
        let long = [UInt8](repeating: 0x41, count: 70_000)  // vbin32
        return [
            ("plain", AMQPMessage(messageAnnotations: annotations(5), body: .data([Array("hello".utf8)]))),
            ("partition key", AMQPMessage(messageAnnotations: annotations(6, key: "device-7"), body: .data([[1, 2, 3]]))),
            ("every section", AMQPMessage(
                header: AMQPMessageHeader(durable: true), deliveryAnnotations: [.symbol("last_enqueued_sequence_number"): .long(99)],
                messageAnnotations: annotations(7, key: "k"), properties: properties, applicationProperties: ["app": .int(1)],
                body: .data([Array("body".utf8)]), footer: [.symbol("f"): .boolean(true)]
            )),
            ("two data sections", AMQPMessage(messageAnnotations: annotations(8), body: .data([Array("ab".utf8), Array("cd".utf8)]))),
            ("a long body", AMQPMessage(messageAnnotations: annotations(9), body: .data([long]))),
            ("an empty body", AMQPMessage(messageAnnotations: annotations(10), body: .empty)),
            ("a value body", AMQPMessage(messageAnnotations: annotations(11), body: .value(.string("text")))),
            ("string annotation keys", AMQPMessage(messageAnnotations: [.string("x-opt-sequence-number"): .long(12), .string("x-opt-partition-key"): .string("s")], body: .data([[9]]))),
            ("a large sequence number", AMQPMessage(messageAnnotations: annotations(1 << 40), body: .data([[0]]))),
        ]
    }()

    @Test(arguments: messages.map(\.0))
    func readsWhatTheFullDecodingReads(name: String) throws {
        let message = try #require(Self.messages.first { $0.0 == name }?.1)
        let received = try ReceivedEvent(message.encoded)
        let full = try received.event()
        #expect(received.sequenceNumber == full.sequenceNumber)
        #expect(received.enqueuedTime == full.enqueuedTime)
        #expect(received.partitionKey == full.partitionKey)
        #expect(Array(received.body.readableBytesView) == full.body)
        // And the full decoding is right, so that agreeing with it means something.
        guard case .data(let sections) = message.body else { return }
        #expect(full.body == sections.flatMap { $0 })
        #expect(full.sequenceNumber == message.messageAnnotations?[text: "x-opt-sequence-number"]?.int64Value)
    }

    @Test func theBodyIsASliceOfTheDelivery() throws {
        let payload = AMQPMessage(messageAnnotations: Self.annotations(1), body: .data([Array("zero copy".utf8)])).encoded
        let received = try ReceivedEvent(payload)
        #expect(String(buffer: received.body) == "zero copy")
        // A slice: the bytes sit at the end of the delivery's bytes.
        #expect(Array(payload.readableBytesView.suffix(9)) == Array(received.body.readableBytesView))
    }

    @Test func refusesWhatTheFullDecodingRefuses() throws {
        let noSequence = AMQPMessage(messageAnnotations: [.symbol("x-opt-offset"): .string("0")], body: .data([[1]])).encoded
        #expect(throws: EventHubsError.self) { try ReceivedEvent(noSequence) }
        var truncated = AMQPMessage(messageAnnotations: Self.annotations(1), body: .data([[1, 2, 3, 4]])).encoded
        truncated.moveWriterIndex(to: truncated.writerIndex - 2)
        #expect(throws: (any Error).self) { try ReceivedEvent(truncated) }
        // A properties section that is not a properties list is refused, as the full decoding refuses it.
        var badProperties = AMQPMessage(messageAnnotations: Self.annotations(1)).encoded
        badProperties.writeAMQPValue(.described(descriptor: .ulong(0x73), value: .string("not a list")))
        badProperties.writeAMQPValue(.described(descriptor: .ulong(0x75), value: .binary([1])))
        #expect(throws: (any Error).self) { try ReceivedEvent(badProperties) }
        // The same delivery with a real properties list is read.
        var good = AMQPMessage(messageAnnotations: Self.annotations(1)).encoded
        good.writeAMQPValue(AMQPMessageProperties().amqpValue)
        good.writeAMQPValue(.described(descriptor: .ulong(0x75), value: .binary([1])))
        #expect(try ReceivedEvent(good).body == ByteBuffer(bytes: [1]))
    }
}
