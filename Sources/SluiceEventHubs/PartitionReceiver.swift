import Foundation
import NIOCore
import NIOSSL
import SluiceAMQP
import Synchronization

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

    /// Up to `count` deliveries, or what arrived within `timeout`, undecoded: the caller makes `ReceivedEvent`s of
    /// them on its own thread.
    public func receiveDeliveries(count: Int, timeout: TimeAmount) -> EventLoopFuture<[AMQPDelivery]> {
        let hub = hub, partition = partition
        return link.receive(count: count, timeout: timeout)
            .flatMapErrorThrowing { error in throw EventHubsClient.translate(error, "receiving from \(hub) partition \(partition)") }
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
