import NIOCore

/// What travels on an AMQP connection: the 8-byte protocol headers (at the start, and again after SASL) and frames.
public enum AMQPWireItem: Hashable, Sendable {
    case header(AMQPProtocolHeader)
    case frame(AMQPFrame)
    /// Frames already encoded, back to back (a sender that writes many transfers at once encodes them into one
    /// buffer, which goes to the socket as it is). Only sent, never decoded.
    case encoded(ByteBuffer)
}

/// Splits the byte stream into protocol headers and frames. A protocol header can only stand where a frame would
/// start, and a frame's size can never begin with the bytes `AMQP` (that would be over 1 GiB, far above any
/// max-frame-size), so the decoder recognises headers wherever they come.
public struct AMQPFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = AMQPWireItem

    /// The largest frame accepted; raise it with `maxFrameSize` once the connection agreed on one.
    public var maxFrameSize: UInt32

    public init(maxFrameSize: UInt32 = 1 << 20) { self.maxFrameSize = maxFrameSize }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let item = try next(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(item))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// The next header or frame in `buffer`, or nil when more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(AMQPError) -> AMQPWireItem? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else { return nil }
        if first == 0x414d_5150 {  // "AMQP"
            guard let bytes = buffer.getBytes(at: buffer.readerIndex, length: 8) else { return nil }
            guard let header = AMQPProtocolHeader(bytes: bytes) else {
                throw AMQPError(.invalidEncoding, "unsupported protocol header \(bytes.map { String($0, radix: 16) }.joined(separator: " "))")
            }
            buffer.moveReaderIndex(forwardBy: 8)
            return .header(header)
        }
        return try AMQPFrame.decode(from: &buffer, maxFrameSize: maxFrameSize).map { .frame($0) }
    }
}

/// Splits the byte stream into protocol headers and frames like `ByteToMessageHandler(AMQPFrameDecoder())`, but
/// without gathering reads into one buffer: the frames of a read are slices of it, and only an item cut in two by the
/// end of a read is copied (into a buffer of its own, completed from the next read). NIO's handler appends every read
/// to a cumulation buffer and moves or copies the rest down as frames are taken off it, which costs a copy of every
/// byte, and more once frames' payloads are kept past the read (the buffer's storage is then shared).
public struct AMQPFrameSplitter {
    private var decoder: AMQPFrameDecoder
    /// The start of an item the last read ended inside.
    private var pending: ByteBuffer?

    public init(maxFrameSize: UInt32 = 1 << 20) { decoder = AMQPFrameDecoder(maxFrameSize: maxFrameSize) }

    /// Bytes held from an item not yet complete.
    public var pendingBytes: Int { pending?.readableBytes ?? 0 }

    /// Takes the next read; calls `emit` with each header and frame completed by it, in order.
    public mutating func feed(_ read: ByteBuffer, _ emit: (AMQPWireItem) -> Void) throws(AMQPError) {
        var input = read
        if var partial = pending {
            pending = nil
            while true {
                if let item = try decoder.next(&partial) {
                    emit(item)
                    break
                }
                let take = min(Self.itemSize(partial) - partial.readableBytes, input.readableBytes)
                if take == 0 {
                    pending = partial
                    return
                }
                var piece = input.readSlice(length: take)!
                partial.writeBuffer(&piece)
            }
        }
        while let item = try decoder.next(&input) { emit(item) }
        if input.readableBytes > 0 {
            // Copied, so that the read's buffer is not kept for these few bytes (and can be reused by NIO).
            var partial = ByteBuffer()
            partial.reserveCapacity(max(input.readableBytes, Self.itemSize(input)))
            partial.writeBuffer(&input)
            pending = partial
        }
    }

    /// The size of the item that starts `bytes` (which the decoder found incomplete, and checked): 8 until the size
    /// can be read (a protocol header is 8 bytes, and so is the smallest frame), then the frame's size.
    private static func itemSize(_ bytes: ByteBuffer) -> Int {
        guard bytes.readableBytes >= 8, let size = bytes.getInteger(at: bytes.readerIndex, endianness: .big, as: UInt32.self) else { return 8 }
        return Int(size)
    }
}

/// The channel handler of `AMQPFrameSplitter`: reads in, headers and frames out. A broken stream is reported once
/// (`errorCaught`) after the items before the break, and what follows it is dropped.
///
/// Handlers further on may cause a read to arrive while this one passes items on (NIO can re-enter `channelRead`):
/// items go through a queue, passed on in order by the outermost call only.
public final class AMQPFrameReader: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = AMQPWireItem

    private var splitter: AMQPFrameSplitter
    private var queue = CircularBuffer<AMQPWireItem>()
    private var failure: (any Error)?
    private var failed = false
    private var delivering = false

    public init(maxFrameSize: UInt32 = 1 << 20) { splitter = AMQPFrameSplitter(maxFrameSize: maxFrameSize) }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        do {
            try splitter.feed(unwrapInboundIn(data)) { queue.append($0) }
        } catch {
            failed = true
            failure = error
        }
        guard !delivering else { return }
        delivering = true
        defer { delivering = false }
        while let item = queue.popFirst() { context.fireChannelRead(wrapInboundOut(item)) }
        if let failure {
            self.failure = nil
            context.fireErrorCaught(failure)
        }
    }
}

/// Writes protocol headers and frames.
public struct AMQPFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = AMQPWireItem

    public init() {}

    public func encode(data: AMQPWireItem, out: inout ByteBuffer) throws {
        switch data {
        case .header(let header): out.writeBytes(header.bytes)
        case .frame(let frame): frame.encode(into: &out)
        case .encoded(let bytes):
            var bytes = bytes
            out.writeBuffer(&bytes)
        }
    }
}

/// Writes protocol headers and frames like `AMQPFrameEncoder`, but hands `.encoded` buffers to the socket as they
/// are: a batch of transfers encoded into one buffer is not copied again into a buffer of the encoder's.
public final class AMQPFrameWriter: ChannelOutboundHandler {
    public typealias OutboundIn = AMQPWireItem
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .encoded(let bytes):
            context.write(wrapOutboundOut(bytes), promise: promise)
        case .header(let header):
            var out = context.channel.allocator.buffer(capacity: 8)
            out.writeBytes(header.bytes)
            context.write(wrapOutboundOut(out), promise: promise)
        case .frame(let frame):
            var out = context.channel.allocator.buffer(capacity: 64 + frame.payload.readableBytes)
            frame.encode(into: &out)
            context.write(wrapOutboundOut(out), promise: promise)
        }
    }
}

extension AMQPFrame {
    /// The frames of one message on a link: the transfer fields on the first, `more` on all but the last, each at
    /// most `maxFrameSize` bytes (part 2.6.14: a message larger than a frame is split across frames).
    public static func transfers(channel: UInt16, _ transfer: AMQPTransfer, payload: ByteBuffer, maxFrameSize: UInt32) -> [AMQPFrame] {
        var first = transfer
        first.more = false
        // Without a delivery state a transfer frame's header and performative take at most 64 bytes plus the tag
        // (frame header 8, descriptor 3, list32 header 9, eleven fields): the common case needs no measuring.
        let bound = 64 + (transfer.deliveryTag?.count ?? 0)
        if transfer.state == nil && payload.readableBytes + bound <= Int(maxFrameSize) {
            return [AMQPFrame(channel: channel, .transfer(first), payload: payload)]
        }
        let overhead = AMQPFrame(channel: channel, .transfer(first)).headerAndBodySize + 8  // room for `more` growing
        let room = max(1, Int(maxFrameSize) - overhead)
        if payload.readableBytes <= room { return [AMQPFrame(channel: channel, .transfer(first), payload: payload)] }
        var frames: [AMQPFrame] = []
        var rest = payload
        var head = transfer
        while rest.readableBytes > 0 {
            let chunk = rest.readSlice(length: min(room, rest.readableBytes))!
            head.more = rest.readableBytes > 0
            frames.append(AMQPFrame(channel: channel, .transfer(head), payload: chunk))
            // Continuation frames carry only the handle (and `more`).
            head = AMQPTransfer(handle: transfer.handle)
        }
        return frames
    }
}

/// Puts a delivery back together from its transfer frames (part 2.6.14): the first frame carries the delivery's
/// fields, every frame a piece of the message, `more` on all but the last; an `aborted` frame drops it.
public struct AMQPTransferAssembler: Sendable {
    public struct Delivery: Sendable {
        /// From the first frame (a peer must send it there).
        public var deliveryID: UInt32?
        public var messageFormat: UInt32
        public var settled: Bool
        public var payload: ByteBuffer
    }

    private var pending: Delivery?

    public init() {}

    /// Whether frames of an unfinished delivery have arrived.
    public var inProgress: Bool { pending != nil }

    /// Adds a frame; returns the delivery once its last frame is in, nil while more follow or when it was aborted.
    public mutating func add(_ transfer: AMQPTransfer, payload: ByteBuffer) -> Delivery? {
        var payload = payload
        if pending != nil {
            pending!.payload.writeBuffer(&payload)
        } else {
            pending = Delivery(deliveryID: transfer.deliveryID, messageFormat: transfer.messageFormat ?? 0, settled: transfer.settled ?? false, payload: payload)
        }
        if transfer.aborted {
            pending = nil
            return nil
        }
        guard !transfer.more else { return nil }
        defer { pending = nil }
        return pending
    }
}
