import Foundation
import NIOCore

extension ByteBuffer {
    /// Reads one AMQP value from the reader index. On failure the reader index is where it was, and the error
    /// names the offset (from the reader index) where decoding stopped.
    public mutating func readAMQPValue() throws(AMQPError) -> AMQPValue {
        var decoder = AMQPDecoder(self)
        let value = try decoder.decode()
        moveReaderIndex(forwardBy: decoder.consumed)
        return value
    }
}

/// Decodes AMQP values from a buffer, strictly: sizes and counts must agree with what they contain, nesting is
/// bounded, and every error says what was wrong and at which byte.
struct AMQPDecoder {
    /// Lists, maps, arrays and described values nest at most this deep (a guard against hostile input).
    static let maximumDepth = 64

    private var buffer: ByteBuffer
    private let start: Int
    private var depth = 0

    init(_ buffer: ByteBuffer) {
        self.buffer = buffer
        start = buffer.readerIndex
    }

    /// Bytes consumed so far.
    var consumed: Int { buffer.readerIndex - start }

    private func fail(_ code: AMQPError.Code, _ message: String) -> AMQPError {
        AMQPError(code, "\(message) at byte \(consumed)")
    }

    private mutating func byte() throws(AMQPError) -> UInt8 {
        guard let b = buffer.readInteger(as: UInt8.self) else { throw fail(.truncated, "the data ends inside a value") }
        return b
    }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(AMQPError) -> T {
        guard let v = buffer.readInteger(endianness: .big, as: T.self) else {
            throw fail(.truncated, "the data ends inside a \(MemoryLayout<T>.size)-byte value")
        }
        return v
    }

    private mutating func bytes(_ count: Int) throws(AMQPError) -> [UInt8] {
        guard count >= 0, let b = buffer.readBytes(length: count) else {
            throw fail(.truncated, "the data ends inside a \(count)-byte value (\(buffer.readableBytes) left)")
        }
        return b
    }

    private mutating func length(wide: Bool) throws(AMQPError) -> Int {
        wide ? Int(try integer(UInt32.self)) : Int(try byte())
    }

    mutating func decode() throws(AMQPError) -> AMQPValue {
        let code = try byte()
        return try decode(code: code)
    }

    private mutating func decode(code: UInt8) throws(AMQPError) -> AMQPValue {
        switch code {
        case 0x00:
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maximumDepth else { throw fail(.invalidEncoding, "values nest deeper than \(Self.maximumDepth)") }
            let descriptor = try decode()
            let value = try decode()
            return .described(descriptor: descriptor, value: value)
        case 0x40: return .null
        case 0x41: return .boolean(true)
        case 0x42: return .boolean(false)
        case 0x56:
            let b = try byte()
            guard b <= 1 else { throw fail(.invalidEncoding, "boolean byte 0x\(String(b, radix: 16)) is neither 0 nor 1") }
            return .boolean(b == 1)
        case 0x50: return .ubyte(try byte())
        case 0x51: return .byte(Int8(bitPattern: try byte()))
        case 0x60: return .ushort(try integer(UInt16.self))
        case 0x61: return .short(try integer(Int16.self))
        case 0x70: return .uint(try integer(UInt32.self))
        case 0x52: return .uint(UInt32(try byte()))
        case 0x43: return .uint(0)
        case 0x80: return .ulong(try integer(UInt64.self))
        case 0x53: return .ulong(UInt64(try byte()))
        case 0x44: return .ulong(0)
        case 0x71: return .int(try integer(Int32.self))
        case 0x54: return .int(Int32(Int8(bitPattern: try byte())))
        case 0x81: return .long(try integer(Int64.self))
        case 0x55: return .long(Int64(Int8(bitPattern: try byte())))
        case 0x72: return .float(Float(bitPattern: try integer(UInt32.self)))
        case 0x82: return .double(Double(bitPattern: try integer(UInt64.self)))
        case 0x74: return .decimal(try bytes(4))
        case 0x84: return .decimal(try bytes(8))
        case 0x94: return .decimal(try bytes(16))
        case 0x73: return .char(try integer(UInt32.self))
        case 0x83: return .timestamp(try integer(Int64.self))
        case 0x98:
            let b = try bytes(16)
            return .uuid(UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])))
        case 0xa0, 0xb0: return .binary(try bytes(try length(wide: code == 0xb0)))
        case 0xa1, 0xb1: return .string(try text(try bytes(try length(wide: code == 0xb1)), "string"))
        case 0xa3, 0xb3: return .symbol(try text(try bytes(try length(wide: code == 0xb3)), "symbol"))
        case 0x45: return .list([])
        case 0xc0, 0xd0: return .list(try compound(wide: code == 0xd0, pairs: false))
        case 0xc1, 0xd1:
            let items = try compound(wide: code == 0xd1, pairs: true)
            var map = AMQPMap()
            map.entries.reserveCapacity(items.count / 2)
            for index in stride(from: 0, to: items.count, by: 2) {
                map.entries.append(.init(key: items[index], value: items[index + 1]))
            }
            return .map(map)
        case 0xe0, 0xf0: return .array(try array(wide: code == 0xf0))
        default:
            // An unknown code: its width class (the high nibble) still says how long it is.
            let width: Int
            switch code >> 4 {
            case 0x4: width = 0
            case 0x5: width = 1
            case 0x6: width = 2
            case 0x7: width = 4
            case 0x8: width = 8
            case 0x9: width = 16
            case 0xa, 0xc, 0xe: width = 1 + Int(try peekByte())
            case 0xb, 0xd, 0xf: width = 4 + Int(try peekUInt32())
            default: throw fail(.invalidEncoding, "0x\(String(code, radix: 16)) is not an AMQP type code")
            }
            return .unknown(code: code, bytes: try bytes(width))
        }
    }

    private func peekByte() throws(AMQPError) -> UInt8 {
        guard let b = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { throw fail(.truncated, "the data ends inside a value") }
        return b
    }

    private func peekUInt32() throws(AMQPError) -> UInt32 {
        guard let v = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            throw fail(.truncated, "the data ends inside a value")
        }
        return v
    }

    private func text(_ bytes: [UInt8], _ kind: String) throws(AMQPError) -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw fail(.invalidEncoding, "a \(kind) that is not valid UTF-8") }
        return s
    }

    /// The items of a list or map: size, count, then exactly `count` values filling exactly `size` bytes.
    private mutating func compound(wide: Bool, pairs: Bool) throws(AMQPError) -> [AMQPValue] {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw fail(.invalidEncoding, "values nest deeper than \(Self.maximumDepth)") }
        let size = try length(wide: wide)
        let end = buffer.readerIndex + size
        guard size <= buffer.readableBytes else {
            throw fail(.truncated, "a \(pairs ? "map" : "list") of \(size) bytes, but only \(buffer.readableBytes) follow")
        }
        let count = try length(wide: wide)
        guard size >= (wide ? 4 : 1) else { throw fail(.invalidEncoding, "a compound size of \(size) cannot hold its count") }
        guard count <= size else { throw fail(.invalidEncoding, "\(count) items cannot fit in \(size) bytes") }
        if pairs && count % 2 != 0 { throw fail(.invalidEncoding, "a map with an odd number (\(count)) of keys and values") }
        var items: [AMQPValue] = []
        items.reserveCapacity(count)
        for _ in 0..<count {
            items.append(try decode())
            guard buffer.readerIndex <= end else { throw fail(.invalidEncoding, "an item runs past the end of its \(size)-byte compound") }
        }
        guard buffer.readerIndex == end else {
            throw fail(.invalidEncoding, "\(end - buffer.readerIndex) bytes left over after the \(count) items of a compound")
        }
        return items
    }

    private mutating func array(wide: Bool) throws(AMQPError) -> AMQPArray {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw fail(.invalidEncoding, "values nest deeper than \(Self.maximumDepth)") }
        let size = try length(wide: wide)
        guard size <= buffer.readableBytes else { throw fail(.truncated, "an array of \(size) bytes, but only \(buffer.readableBytes) follow") }
        let end = buffer.readerIndex + size
        let count = try length(wide: wide)
        var descriptor: AMQPValue?
        var code = try byte()
        if code == 0x00 {
            descriptor = try decode()
            code = try byte()
        }
        guard let elementType = Self.arrayType(code) else {
            throw fail(.invalidEncoding, "0x\(String(code, radix: 16)) cannot be an array's element constructor")
        }
        guard count <= size else { throw fail(.invalidEncoding, "\(count) elements cannot fit in \(size) bytes") }
        var elements: [AMQPValue] = []
        elements.reserveCapacity(count)
        for _ in 0..<count {
            let value = try decode(code: code)
            elements.append(descriptor.map { .described(descriptor: $0, value: value) } ?? value)
            guard buffer.readerIndex <= end else { throw fail(.invalidEncoding, "an element runs past the end of its array") }
        }
        guard buffer.readerIndex == end else { throw fail(.invalidEncoding, "\(end - buffer.readerIndex) bytes left over after an array") }
        let type = descriptor.map { AMQPArrayType.described(descriptor: $0, elementType) } ?? elementType
        return AMQPArray(unchecked: type, elements)
    }

    private static func arrayType(_ code: UInt8) -> AMQPArrayType? {
        switch code {
        case 0x56, 0x41, 0x42: .boolean
        case 0x50: .ubyte
        case 0x60: .ushort
        case 0x70, 0x52, 0x43: .uint
        case 0x80, 0x53, 0x44: .ulong
        case 0x51: .byte
        case 0x61: .short
        case 0x71, 0x54: .int
        case 0x81, 0x55: .long
        case 0x72: .float
        case 0x82: .double
        case 0x73: .char
        case 0x83: .timestamp
        case 0x98: .uuid
        case 0xa0, 0xb0: .binary
        case 0xa1, 0xb1: .string
        case 0xa3, 0xb3: .symbol
        case 0x45, 0xc0, 0xd0: .list
        case 0xc1, 0xd1: .map
        default: nil
        }
    }
}
