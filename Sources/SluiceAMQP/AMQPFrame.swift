import NIOCore

/// The protocol headers that start a connection (part 2.2): `AMQP` followed by a protocol id and version 1.0.0.
public enum AMQPProtocolHeader: UInt8, Hashable, Sendable {
    case amqp = 0
    case tls = 2
    case sasl = 3

    public var bytes: [UInt8] { [0x41, 0x4d, 0x51, 0x50, rawValue, 1, 0, 0] }

    /// Reads a header from 8 bytes; nil when they are not an AMQP 1.0.0 header of a known protocol.
    public init?(bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        guard b.count == 8, b[0..<4] == [0x41, 0x4d, 0x51, 0x50], b[5] == 1, b[6] == 0, b[7] == 0 else { return nil }
        self.init(rawValue: b[4])
    }
}

/// One frame (part 2.3): an AMQP frame (a performative, and for `transfer` the message bytes after it), a SASL
/// frame, or an empty AMQP frame (a heartbeat).
public struct AMQPFrame: Hashable, Sendable {
    public enum Body: Hashable, Sendable {
        case amqp(AMQPPerformative)
        case sasl(SASLFrameBody)
        /// An AMQP frame with no body: keeps an idle connection alive.
        case heartbeat
    }

    public var channel: UInt16
    public var body: Body
    /// The bytes after the performative: a transfer's (part of a) message.
    public var payload: ByteBuffer

    public init(channel: UInt16 = 0, _ performative: AMQPPerformative, payload: ByteBuffer = ByteBuffer()) {
        self.channel = channel
        self.body = .amqp(performative)
        self.payload = payload
    }

    public init(sasl body: SASLFrameBody) {
        channel = 0
        self.body = .sasl(body)
        payload = ByteBuffer()
    }

    public static let heartbeat = AMQPFrame(channel: 0, body: .heartbeat)

    init(channel: UInt16, body: Body, payload: ByteBuffer = ByteBuffer()) {
        self.channel = channel
        self.body = body
        self.payload = payload
    }

    /// The smallest max-frame-size a peer may announce (part 2.7.1).
    public static let minimumMaxFrameSize: UInt32 = 512

    /// Appends the frame: size, data offset 2, type, channel, body, payload.
    public func encode(into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(0 as UInt32)
        buffer.writeInteger(2 as UInt8)
        switch body {
        case .amqp(let performative):
            buffer.writeInteger(0 as UInt8)
            buffer.writeInteger(channel, endianness: .big)
            buffer.writeAMQPValue(performative.amqpValue)
        case .sasl(let sasl):
            buffer.writeInteger(1 as UInt8)
            buffer.writeInteger(0 as UInt16)
            buffer.writeAMQPValue(sasl.amqpValue)
        case .heartbeat:
            buffer.writeInteger(0 as UInt8)
            buffer.writeInteger(channel, endianness: .big)
        }
        var payload = payload
        buffer.writeBuffer(&payload)
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: start, endianness: .big)
    }

    /// The encoded size of the frame without its payload.
    public var headerAndBodySize: Int {
        var scratch = ByteBuffer()
        AMQPFrame(channel: channel, body: body).encode(into: &scratch)
        return scratch.readableBytes
    }

    /// Reads one frame if the buffer holds a whole one; nil when more bytes are needed. A frame larger than
    /// `maxFrameSize`, a data offset below 2 or an unknown frame type is an error.
    public static func decode(from buffer: inout ByteBuffer, maxFrameSize: UInt32) throws(AMQPError) -> AMQPFrame? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else { return nil }
        guard size >= 8 else { throw AMQPError(.invalidEncoding, "a frame size of \(size) is smaller than the 8-byte frame header") }
        guard size <= maxFrameSize else { throw AMQPError(.tooLarge, "a frame of \(size) bytes exceeds the agreed max-frame-size of \(maxFrameSize)") }
        guard buffer.readableBytes >= Int(size) else { return nil }
        var frame = buffer.readSlice(length: Int(size))!
        frame.moveReaderIndex(forwardBy: 4)
        let offset = Int(frame.readInteger(as: UInt8.self)!)
        let type = frame.readInteger(as: UInt8.self)!
        let channel = frame.readInteger(endianness: .big, as: UInt16.self)!
        guard offset >= 2, offset * 4 <= Int(size) else { throw AMQPError(.invalidEncoding, "a frame data offset of \(offset) words is invalid for a \(size)-byte frame") }
        frame.moveReaderIndex(forwardBy: offset * 4 - 8)  // skip an extended header
        switch type {
        case 0:
            if frame.readableBytes == 0 { return AMQPFrame(channel: channel, body: .heartbeat) }
            // Most frames on a busy connection are transfers: read those without the general decoder.
            if let transfer = AMQPTransfer.readUsual(from: &frame) {
                return AMQPFrame(channel: channel, body: .amqp(.transfer(transfer)), payload: frame.slice())
            }
            let performative = try AMQPPerformative(try frame.readAMQPValue())
            return AMQPFrame(channel: channel, body: .amqp(performative), payload: frame.slice())
        case 1:
            let body = try SASLFrameBody(try frame.readAMQPValue())
            guard frame.readableBytes == 0 else { throw AMQPError(.invalidEncoding, "\(frame.readableBytes) bytes after a SASL frame's body") }
            return AMQPFrame(channel: channel, body: .sasl(body))
        default:
            throw AMQPError(.invalidEncoding, "frame type 0x\(String(type, radix: 16)) is neither AMQP (0) nor SASL (1)")
        }
    }
}
