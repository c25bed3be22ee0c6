import Foundation
import NIOCore
import SluiceAMQP

/// An event delivery read only as far as a reader of bodies needs: the sequence number, enqueued time and partition
/// key from the message annotations, and the body as a slice of the received bytes (not copied). `event()` decodes
/// the whole message when more is wanted (properties, offsets).
///
/// Made on the reader's thread from the delivery's bytes, so that a source reading many partitions decodes them on
/// its own threads, not all on the connection's event loop.
public struct ReceivedEvent: Sendable {
    public var sequenceNumber: Int64
    /// Milliseconds since the epoch.
    public var enqueuedTime: Int64
    public var partitionKey: String?
    /// The bytes of the `data` section (of all of them, joined, when there are several).
    public var body: ByteBuffer
    /// The whole delivery, for `event()`.
    public let payload: ByteBuffer

    /// Reads a delivery's sections; the annotations Event Hubs adds and the body are read directly, any other
    /// section is skipped, and a message of another shape (a body that is not `data`, a section described by name,
    /// annotation keys that are not symbols) is decoded in full by `PartitionReceiver.event`.
    public init(_ payload: ByteBuffer) throws {
        var buffer = payload
        var sequence: Int64?
        var enqueued: Int64 = 0
        var key: String?
        var body: ByteBuffer?
        var usual = true
        sections: while buffer.readableBytes > 0 {
            guard buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt16.self) == 0x0053,
                let code = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt8.self)
            else {
                usual = false
                break
            }
            switch code {
            case 0x75:
                buffer.moveReaderIndex(forwardBy: 3)
                let length: Int?
                switch buffer.readInteger(as: UInt8.self) {
                case 0xa0: length = buffer.readInteger(as: UInt8.self).map(Int.init)
                case 0xb0: length = buffer.readInteger(endianness: .big, as: UInt32.self).map(Int.init)
                default: length = nil
                }
                guard let length, let bytes = buffer.readSlice(length: length) else {
                    throw EventHubsError(.protocolViolation, "an event's data section is truncated or not binary")
                }
                if var joined = body {
                    joined.writeImmutableBuffer(bytes)
                    body = joined
                } else {
                    body = bytes
                }
            case 0x72:
                buffer.moveReaderIndex(forwardBy: 3)
                guard Self.readAnnotations(&buffer, sequence: &sequence, enqueued: &enqueued, key: &key) else {
                    usual = false
                    break sections
                }
            case 0x76, 0x77:
                usual = false
                break sections
            case 0x73:
                // Checked as the full decoder checks them, so that both refuse the same deliveries.
                _ = try AMQPMessageProperties(try buffer.readAMQPValue())
            default:
                _ = try buffer.readAMQPValue()  // header, delivery annotations, application properties, footer
            }
        }
        self.payload = payload
        guard usual else {
            let event = try PartitionReceiver.event(payload)
            sequenceNumber = event.sequenceNumber
            enqueuedTime = event.enqueuedTime
            partitionKey = event.partitionKey
            self.body = ByteBuffer(bytes: event.body)
            return
        }
        guard let sequence else { throw EventHubsError(.protocolViolation, "an event without x-opt-sequence-number") }
        sequenceNumber = sequence
        enqueuedTime = enqueued
        partitionKey = key
        self.body = body ?? ByteBuffer()
    }

    /// The whole event, every section decoded.
    public func event() throws -> EventHubsEvent { try PartitionReceiver.event(payload) }

    private static let sequenceKey = Array("x-opt-sequence-number".utf8)
    private static let enqueuedKey = Array("x-opt-enqueued-time".utf8)
    private static let partitionKeyKey = Array("x-opt-partition-key".utf8)

    /// Reads the message annotations map at the reader index, taking the three annotations out; false (the reader
    /// index anywhere) when a key is not a symbol or the map is not a map, for the general decoder to deal with.
    /// The values Event Hubs gives them (long, timestamp, string) are read in place; another type goes through the
    /// general decoder.
    private static func readAnnotations(_ buffer: inout ByteBuffer, sequence: inout Int64?, enqueued: inout Int64, key: inout String?) -> Bool {
        let count: Int, end: Int
        switch buffer.readInteger(as: UInt8.self) {
        case 0xc1:
            guard let size = buffer.readInteger(as: UInt8.self), let n = buffer.readInteger(as: UInt8.self), size >= 1 else { return false }
            count = Int(n)
            end = buffer.readerIndex + Int(size) - 1
        case 0xd1:
            guard let size = buffer.readInteger(endianness: .big, as: UInt32.self), let n = buffer.readInteger(endianness: .big, as: UInt32.self), size >= 4 else { return false }
            count = Int(n)
            end = buffer.readerIndex + Int(size) - 4
        default:
            return false
        }
        guard count % 2 == 0, end <= buffer.writerIndex else { return false }
        for _ in 0..<count / 2 {
            let length: Int
            switch buffer.readInteger(as: UInt8.self) {
            case 0xa3: guard let n = buffer.readInteger(as: UInt8.self) else { return false }; length = Int(n)
            case 0xb3: guard let n = buffer.readInteger(endianness: .big, as: UInt32.self) else { return false }; length = Int(n)
            default: return false
            }
            guard buffer.readableBytes >= length else { return false }
            let name = buffer.readerIndex
            buffer.moveReaderIndex(forwardBy: length)
            if matches(buffer, name, length, sequenceKey) {
                guard let value = readValue(&buffer) else { return false }
                sequence = value.int64Value
            } else if matches(buffer, name, length, enqueuedKey) {
                guard let value = readValue(&buffer) else { return false }
                if case .timestamp(let t) = value { enqueued = t }
            } else if matches(buffer, name, length, partitionKeyKey) {
                guard let value = readValue(&buffer) else { return false }
                key = value.text
            } else {
                guard (try? buffer.readAMQPValue()) != nil else { return false }  // x-opt-offset, and any other
            }
        }
        return buffer.readerIndex == end
    }

    /// Whether the `length` bytes at `index` of `buffer` are `name`.
    private static func matches(_ buffer: ByteBuffer, _ index: Int, _ length: Int, _ name: [UInt8]) -> Bool {
        guard length == name.count else { return false }
        return buffer.withUnsafeReadableBytes { bytes in
            name.withUnsafeBytes { memcmp(bytes.baseAddress! + (index - buffer.readerIndex), $0.baseAddress!, length) == 0 }
        }
    }

    /// A long, timestamp or string read in place; anything else by the general decoder. Nil when it is broken.
    private static func readValue(_ buffer: inout ByteBuffer) -> AMQPValue? {
        switch buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
        case 0x81:
            guard let v = buffer.getInteger(at: buffer.readerIndex + 1, endianness: .big, as: Int64.self) else { return nil }
            buffer.moveReaderIndex(forwardBy: 9)
            return .long(v)
        case 0x83:
            guard let v = buffer.getInteger(at: buffer.readerIndex + 1, endianness: .big, as: Int64.self) else { return nil }
            buffer.moveReaderIndex(forwardBy: 9)
            return .timestamp(v)
        default:
            return try? buffer.readAMQPValue()
        }
    }
}
