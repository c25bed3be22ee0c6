import NIOCore
import Foundation

/// Writing AMQP values.
///
/// Every value gets its shortest encoding (`smalluint`, `uint0`, `str8`, `list8`, …) with one deliberate exception:
/// an empty list is written as `list8` with count 0, never `list0`, and composite types (performatives, message
/// sections) are written with all their fields, trailing nulls included. Both are legal AMQP, and they are what the
/// official Azure Python SDK 5.15.1 needs: it cannot read `list0` or a performative that omits trailing fields.
extension ByteBuffer {
    /// Appends the encoding of `value`.
    public mutating func writeAMQPValue(_ value: AMQPValue) {
        switch value {
        case .null: writeInteger(0x40 as UInt8)
        case .boolean(let b): writeInteger(b ? 0x41 : 0x42 as UInt8)
        case .ubyte(let v): writeCode(0x50, v)
        case .ushort(let v): writeCode(0x60, v)
        case .uint(let v):
            if v == 0 { writeInteger(0x43 as UInt8) } else if v < 256 { writeCode(0x52, UInt8(v)) } else { writeCode(0x70, v) }
        case .ulong(let v):
            if v == 0 { writeInteger(0x44 as UInt8) } else if v < 256 { writeCode(0x53, UInt8(v)) } else { writeCode(0x80, v) }
        case .byte(let v): writeCode(0x51, v)
        case .short(let v): writeCode(0x61, v)
        case .int(let v): if let small = Int8(exactly: v) { writeCode(0x54, small) } else { writeCode(0x71, v) }
        case .long(let v): if let small = Int8(exactly: v) { writeCode(0x55, small) } else { writeCode(0x81, v) }
        case .float(let v): writeCode(0x72, v.bitPattern)
        case .double(let v): writeCode(0x82, v.bitPattern)
        case .decimal(let bytes):
            writeInteger(bytes.count == 4 ? 0x74 : bytes.count == 8 ? 0x84 : 0x94 as UInt8)
            writeBytes(bytes)
        case .char(let v): writeCode(0x73, v)
        case .timestamp(let v): writeCode(0x83, v)
        case .uuid(let v):
            writeInteger(0x98 as UInt8)
            withUnsafeBytes(of: v.uuid) { _ = writeBytes($0) }
        case .binary(let bytes): writeVariable(0xa0, 0xb0, bytes)
        case .string(let s): writeVariable(0xa1, 0xb1, Array(s.utf8))
        case .symbol(let s): writeVariable(0xa3, 0xb3, Array(s.utf8))
        case .list(let items): writeList(items)
        case .map(let map):
            writeCompound(small: 0xc1, large: 0xd1, count: map.count * 2) {
                for entry in map.entries {
                    $0.writeAMQPValue(entry.key)
                    $0.writeAMQPValue(entry.value)
                }
            }
        case .array(let array): writeArray(array)
        case .described(let descriptor, let inner):
            writeInteger(0x00 as UInt8)
            writeAMQPValue(descriptor)
            writeAMQPValue(inner)
        case .unknown(let code, let bytes):
            writeInteger(code)
            writeBytes(bytes)
        }
    }

    /// Appends a list; `count` is its number of items.
    mutating func writeList(_ items: [AMQPValue]) {
        writeCompound(small: 0xc0, large: 0xd0, count: items.count) {
            for item in items { $0.writeAMQPValue(item) }
        }
    }

    private mutating func writeCode<T: FixedWidthInteger>(_ code: UInt8, _ value: T) {
        writeInteger(code)
        writeInteger(value, endianness: .big)
    }

    private mutating func writeVariable(_ small: UInt8, _ large: UInt8, _ bytes: [UInt8]) {
        if bytes.count < 256 {
            writeInteger(small)
            writeInteger(UInt8(bytes.count))
        } else {
            writeInteger(large)
            writeInteger(UInt32(bytes.count), endianness: .big)
        }
        writeBytes(bytes)
    }

    /// Writes a list or map: the content first, behind room for the 32-bit form, then moves it down when the
    /// 8-bit form fits (compound8: size and count of one byte each, the size counting the count byte).
    private mutating func writeCompound(small: UInt8, large: UInt8, count: Int, _ content: (inout ByteBuffer) -> Void) {
        let start = writerIndex
        writeInteger(large)
        writeInteger(0 as UInt32)
        writeInteger(UInt32(count), endianness: .big)
        let contentStart = writerIndex
        content(&self)
        let length = writerIndex - contentStart
        if length + 1 < 256 && count < 256 {
            setInteger(small, at: start)
            setInteger(UInt8(length + 1), at: start + 1)
            setInteger(UInt8(count), at: start + 2)
            if length > 0 { _ = try! copyBytes(at: contentStart, to: start + 3, length: length) }  // ranges are in bounds
            moveWriterIndex(to: start + 3 + length)
        } else {
            setInteger(UInt32(length + 4), at: start + 1, endianness: .big)
        }
    }

    private mutating func writeArray(_ array: AMQPArray) {
        // The element constructor: fixed-width types in their full-width form, variable-width ones in the short form
        // when every element fits it.
        func constructor(_ type: AMQPArrayType, _ elements: [AMQPValue]) -> (code: UInt8, descriptor: AMQPValue?) {
            func variable(_ small: UInt8, _ large: UInt8) -> UInt8 {
                elements.allSatisfy { Self.variableLength($0) < 256 } ? small : large
            }
            switch type {
            case .boolean: return (0x56, nil)
            case .ubyte: return (0x50, nil)
            case .ushort: return (0x60, nil)
            case .uint: return (0x70, nil)
            case .ulong: return (0x80, nil)
            case .byte: return (0x51, nil)
            case .short: return (0x61, nil)
            case .int: return (0x71, nil)
            case .long: return (0x81, nil)
            case .float: return (0x72, nil)
            case .double: return (0x82, nil)
            case .char: return (0x73, nil)
            case .timestamp: return (0x83, nil)
            case .uuid: return (0x98, nil)
            case .binary: return (variable(0xa0, 0xb0), nil)
            case .string: return (variable(0xa1, 0xb1), nil)
            case .symbol: return (variable(0xa3, 0xb3), nil)
            case .list: return (0xd0, nil)
            case .map: return (0xd1, nil)
            case .described(let descriptor, let inner):
                let values = elements.map { if case .described(_, let v) = $0 { v } else { $0 } }
                return (constructor(inner, values).code, descriptor)
            }
        }
        let (code, descriptor) = constructor(array.type, array.elements)
        writeCompound(small: 0xe0, large: 0xf0, count: array.elements.count) { buffer in
            if let descriptor {
                buffer.writeInteger(0x00 as UInt8)
                buffer.writeAMQPValue(descriptor)
            }
            buffer.writeInteger(code)
            for element in array.elements {
                var value = element
                if descriptor != nil, case .described(_, let inner) = element { value = inner }
                buffer.writeArrayElement(value, code: code)
            }
        }
    }

    private static func variableLength(_ value: AMQPValue) -> Int {
        switch value {
        case .binary(let b): b.count
        case .string(let s), .symbol(let s): s.utf8.count
        default: 0
        }
    }

    /// An array element: its value in the encoding `code` names, without the constructor.
    private mutating func writeArrayElement(_ value: AMQPValue, code: UInt8) {
        switch value {
        case .boolean(let b): writeInteger(b ? 1 : 0 as UInt8)
        case .ubyte(let v): writeInteger(v)
        case .ushort(let v): writeInteger(v, endianness: .big)
        case .uint(let v): writeInteger(v, endianness: .big)
        case .ulong(let v): writeInteger(v, endianness: .big)
        case .byte(let v): writeInteger(v)
        case .short(let v): writeInteger(v, endianness: .big)
        case .int(let v): writeInteger(v, endianness: .big)
        case .long(let v): writeInteger(v, endianness: .big)
        case .float(let v): writeInteger(v.bitPattern, endianness: .big)
        case .double(let v): writeInteger(v.bitPattern, endianness: .big)
        case .char(let v): writeInteger(v, endianness: .big)
        case .timestamp(let v): writeInteger(v, endianness: .big)
        case .uuid(let v): withUnsafeBytes(of: v.uuid) { _ = writeBytes($0) }
        case .binary(let b): writeElementBytes(b, code: code)
        case .string(let s), .symbol(let s): writeElementBytes(Array(s.utf8), code: code)
        case .list, .map:
            // Elements of list and map arrays are always in the 32-bit form (the constructor is 0xd0 / 0xd1).
            var element = ByteBuffer()
            element.writeAMQPValue(value)
            let first = element.readInteger(as: UInt8.self)!
            if first == 0xc0 || first == 0xc1 {
                let size = Int(element.readInteger(as: UInt8.self)!)
                let count = element.readInteger(as: UInt8.self)!
                writeInteger(UInt32(size + 3), endianness: .big)
                writeInteger(UInt32(count), endianness: .big)
                var rest = element
                writeBuffer(&rest)
            } else {
                writeBuffer(&element)
            }
        default:
            writeAMQPValue(value)  // AMQPArray's initializer keeps other values out
        }
    }

    private mutating func writeElementBytes(_ bytes: [UInt8], code: UInt8) {
        if code & 0xf0 == 0xa0 { writeInteger(UInt8(bytes.count)) } else { writeInteger(UInt32(bytes.count), endianness: .big) }
        writeBytes(bytes)
    }
}
