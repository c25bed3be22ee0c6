import NIOCore

// Transfer frames are nearly all the frames of a busy link, one per message: these two functions write and read the
// common shape of one directly, without building the performative as a list of AMQP values and encoding (or decoding)
// it value by value. The bytes are exactly those of the general encoder; the reader hands anything it does not
// expect back to the general decoder, so that the two accept and refuse the same frames.

extension ByteBuffer {
    /// Appends one transfer frame holding a whole message: the transfer with its handle, delivery-id, a 4-byte
    /// big-endian delivery tag, the message format and `settled`, all eleven fields written (trailing nulls and
    /// falses included, as the general encoder writes performatives), followed by the bytes `payload` appends.
    /// The bytes are those of `AMQPFrame(channel:_:payload:).encode(into:)` for the same transfer.
    public mutating func writeTransferFrame(
        channel: UInt16, handle: UInt32, deliveryID: UInt32, deliveryTag: UInt32, messageFormat: UInt32, settled: Bool,
        payload: (inout ByteBuffer) -> Void
    ) {
        let start = writerIndex
        // size (set below), data offset 2, type 0 (AMQP), channel, descriptor 0x14 as smallulong, list8 of 11
        writeInteger(0 as UInt32)
        writeInteger(0x0200 as UInt16, endianness: .big)
        writeInteger(channel, endianness: .big)
        writeInteger(0x0053_14c0 as UInt32, endianness: .big)
        let listSize = writerIndex
        writeInteger(0 as UInt16)  // size and count of the list8
        writeSmallestUInt(handle)
        writeSmallestUInt(deliveryID)
        writeInteger(0xa004 as UInt16, endianness: .big)  // vbin8 of 4 bytes
        writeInteger(deliveryTag, endianness: .big)
        writeSmallestUInt(messageFormat)
        writeInteger(settled ? 0x41 : 0x42 as UInt8)
        // more false, rcv-settle-mode and state null, resume, aborted and batchable false
        writeInteger(0x4240_4042 as UInt32, endianness: .big)
        writeInteger(0x4242 as UInt16, endianness: .big)
        // The list's size counts the count byte and the fields: at most 1 + 28 bytes, always a list8.
        setInteger(UInt8(writerIndex - listSize - 1), at: listSize)
        setInteger(11 as UInt8, at: listSize + 1)
        payload(&self)
        setInteger(UInt32(writerIndex - start), at: start, endianness: .big)
    }

    /// A `uint` in its shortest encoding (uint0, smalluint or uint), as `writeAMQPValue(.uint(_))` writes it.
    private mutating func writeSmallestUInt(_ value: UInt32) {
        if value == 0 {
            writeInteger(0x43 as UInt8)
        } else if value < 256 {
            writeInteger(0x52 as UInt8)
            writeInteger(UInt8(value))
        } else {
            writeInteger(0x70 as UInt8)
            writeInteger(value, endianness: .big)
        }
    }
}

extension AMQPTransfer {
    /// Reads a transfer performative at the reader index of `body` (a frame's body, after its header) when it has
    /// the usual shape: the numeric descriptor, a list8 or list32, and every field in an encoding a transfer's field
    /// may have, without a delivery state. Returns nil, with the reader index unmoved, for anything else — the
    /// general decoder then reads it and reports what is wrong with it.
    static func readUsual(from body: inout ByteBuffer) -> AMQPTransfer? {
        var reader = FieldReader(buffer: body)
        guard reader.byte() == 0x00, reader.byte() == 0x53, reader.byte() == 0x14 else { return nil }
        let count: Int, end: Int
        switch reader.byte() {
        case 0xc0:
            guard let size = reader.byte(), let n = reader.byte() else { return nil }
            count = Int(n)
            end = reader.index + Int(size) - 1
        case 0xd0:
            guard let size = reader.uint32(), let n = reader.uint32(), size >= 4 else { return nil }
            count = Int(n)
            end = reader.index + Int(size) - 4
        default:
            return nil
        }
        // A transfer has 11 fields; the handle is mandatory.
        guard count >= 1, count <= 11, end <= body.writerIndex else { return nil }
        guard let handle = reader.uint(), let handle else { return nil }
        var transfer = AMQPTransfer(handle: handle)
        for index in 1..<count {
            switch index {
            case 1: guard let v = reader.uint() else { return nil }; transfer.deliveryID = v
            case 2: guard let v = reader.binary() else { return nil }; transfer.deliveryTag = v
            case 3: guard let v = reader.uint() else { return nil }; transfer.messageFormat = v
            case 4: guard let v = reader.bool() else { return nil }; transfer.settled = v
            case 5: guard let v = reader.bool() else { return nil }; transfer.more = v ?? false
            case 6: guard let v = reader.ubyte() else { return nil }; transfer.receiverSettleMode = v
            case 7: guard reader.byte() == 0x40 else { return nil }  // a state: the general decoder reads it
            case 8: guard let v = reader.bool() else { return nil }; transfer.resume = v ?? false
            case 9: guard let v = reader.bool() else { return nil }; transfer.aborted = v ?? false
            default: guard let v = reader.bool() else { return nil }; transfer.batchable = v ?? false
            }
        }
        guard reader.index == end else { return nil }
        body.moveReaderIndex(to: end)
        return transfer
    }

    /// Reads fields by index, each in the encodings the specification allows for its type; nil for anything else
    /// (an optional's absence is `.some(nil)`).
    private struct FieldReader {
        let buffer: ByteBuffer
        var index: Int
        init(buffer: ByteBuffer) {
            self.buffer = buffer
            index = buffer.readerIndex
        }

        mutating func byte() -> UInt8? {
            guard let b = buffer.getInteger(at: index, as: UInt8.self) else { return nil }
            index += 1
            return b
        }

        mutating func uint32() -> UInt32? {
            guard let v = buffer.getInteger(at: index, endianness: .big, as: UInt32.self) else { return nil }
            index += 4
            return v
        }

        mutating func uint() -> UInt32?? {
            switch byte() {
            case 0x40: return .some(nil)
            case 0x43: return 0
            case 0x52: return byte().map { UInt32($0) }
            case 0x70: return uint32()
            default: return nil
            }
        }

        mutating func ubyte() -> UInt8?? {
            switch byte() {
            case 0x40: return .some(nil)
            case 0x50: return byte()
            default: return nil
            }
        }

        mutating func bool() -> Bool?? {
            switch byte() {
            case 0x40: return .some(nil)
            case 0x41: return true
            case 0x42: return false
            case 0x56:
                switch byte() {
                case 0: return false
                case 1: return true
                default: return nil
                }
            default: return nil
            }
        }

        mutating func binary() -> [UInt8]?? {
            let length: Int
            switch byte() {
            case 0x40: return .some(nil)
            case 0xa0: guard let n = byte() else { return nil }; length = Int(n)
            case 0xb0: guard let n = uint32() else { return nil }; length = Int(n)
            default: return nil
            }
            guard let bytes = buffer.getBytes(at: index, length: length) else { return nil }
            index += length
            return bytes
        }
    }
}
