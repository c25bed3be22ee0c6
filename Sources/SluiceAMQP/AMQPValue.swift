import Foundation

/// A value of the AMQP 1.0 type system (part 1 of the specification): primitive types, lists, maps, arrays and
/// described types.
///
/// Decoding keeps what was on the wire apart where the distinction matters to a peer (a `symbol` is not a `string`,
/// a `uint` is not a `ulong`); encoding always picks the shortest encoding of a value, except that it never writes
/// `list0` (some peers cannot read it, see `AMQPEncoding`).
public indirect enum AMQPValue: Hashable, Sendable {
    case null
    case boolean(Bool)
    case ubyte(UInt8)
    case ushort(UInt16)
    case uint(UInt32)
    case ulong(UInt64)
    case byte(Int8)
    case short(Int16)
    case int(Int32)
    case long(Int64)
    case float(Float)
    case double(Double)
    /// IEEE 754 decimal values, kept as their raw big-endian bytes (4, 8 or 16).
    case decimal([UInt8])
    /// A UTF-32 code point.
    case char(UInt32)
    /// Milliseconds since the Unix epoch.
    case timestamp(Int64)
    case uuid(UUID)
    case binary([UInt8])
    case string(String)
    case symbol(String)
    case list([AMQPValue])
    case map(AMQPMap)
    case array(AMQPArray)
    /// A value with a descriptor (a `ulong` code or a `symbol` name) that gives it a meaning.
    case described(descriptor: AMQPValue, value: AMQPValue)
    /// A type code this decoder does not know, with the bytes its width class says it has; written back unchanged.
    case unknown(code: UInt8, bytes: [UInt8])
}

extension AMQPValue {
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The value as a signed integer, when it is any integer type that fits.
    public var int64Value: Int64? {
        switch self {
        case .ubyte(let v): Int64(v)
        case .ushort(let v): Int64(v)
        case .uint(let v): Int64(v)
        case .ulong(let v): Int64(exactly: v)
        case .byte(let v): Int64(v)
        case .short(let v): Int64(v)
        case .int(let v): Int64(v)
        case .long(let v): v
        default: nil
        }
    }

    /// The value as an unsigned integer, when it is any integer type that fits.
    public var uint64Value: UInt64? {
        switch self {
        case .ulong(let v): v
        default: int64Value.flatMap { UInt64(exactly: $0) }
        }
    }

    /// The text of a `string` or a `symbol`.
    public var text: String? {
        switch self {
        case .string(let s), .symbol(let s): s
        default: nil
        }
    }

    /// A short name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .boolean: "boolean"
        case .ubyte: "ubyte"
        case .ushort: "ushort"
        case .uint: "uint"
        case .ulong: "ulong"
        case .byte: "byte"
        case .short: "short"
        case .int: "int"
        case .long: "long"
        case .float: "float"
        case .double: "double"
        case .decimal: "decimal"
        case .char: "char"
        case .timestamp: "timestamp"
        case .uuid: "uuid"
        case .binary: "binary"
        case .string: "string"
        case .symbol: "symbol"
        case .list: "list"
        case .map: "map"
        case .array: "array"
        case .described: "described"
        case .unknown(let code, _): "unknown type 0x\(String(code, radix: 16))"
        }
    }
}

extension AMQPValue: ExpressibleByStringLiteral, ExpressibleByNilLiteral, ExpressibleByBooleanLiteral {
    /// A string literal is an AMQP `string`; write `.symbol("...")` for a symbol.
    public init(stringLiteral value: String) { self = .string(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
}

/// An AMQP map: key-value pairs in wire order (keys are unique by the specification; the decoder does not enforce it).
public struct AMQPMap: Hashable, Sendable, ExpressibleByDictionaryLiteral {
    public struct Entry: Hashable, Sendable {
        public var key: AMQPValue
        public var value: AMQPValue
        public init(key: AMQPValue, value: AMQPValue) {
            self.key = key
            self.value = value
        }
    }

    public var entries: [Entry]

    public init(_ entries: [Entry] = []) { self.entries = entries }

    public init(dictionaryLiteral elements: (AMQPValue, AMQPValue)...) {
        entries = elements.map { Entry(key: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// The value of the first entry whose key equals `key`.
    public subscript(key: AMQPValue) -> AMQPValue? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append(Entry(key: key, value: newValue))
            }
        }
    }

    /// The value under a key that is a `string` or a `symbol` with this text (peers differ in which they send).
    public subscript(text key: String) -> AMQPValue? {
        entries.first { $0.key.text == key }?.value
    }
}

/// The element type of an AMQP array: every element has the same encoding.
public indirect enum AMQPArrayType: Hashable, Sendable {
    case boolean, ubyte, ushort, uint, ulong, byte, short, int, long, float, double, char, timestamp, uuid
    case binary, string, symbol, list, map
    case described(descriptor: AMQPValue, AMQPArrayType)
}

/// An AMQP array: elements of one type.
public struct AMQPArray: Hashable, Sendable {
    public let type: AMQPArrayType
    public let elements: [AMQPValue]

    /// Checks that every element has `type`.
    public init(_ type: AMQPArrayType, _ elements: [AMQPValue]) throws(AMQPError) {
        for (index, element) in elements.enumerated() where !Self.matches(element, type) {
            throw AMQPError(.invalidValue, "array element \(index) is a \(element.typeName), not a \(type)")
        }
        self.type = type
        self.elements = elements
    }

    /// An array of symbols (capabilities, mechanisms).
    public static func symbols(_ names: [String]) -> AMQPArray {
        AMQPArray(unchecked: .symbol, names.map { .symbol($0) })
    }

    /// An array of strings.
    public static func strings(_ values: [String]) -> AMQPArray {
        AMQPArray(unchecked: .string, values.map { .string($0) })
    }

    init(unchecked type: AMQPArrayType, _ elements: [AMQPValue]) {
        self.type = type
        self.elements = elements
    }

    static func matches(_ value: AMQPValue, _ type: AMQPArrayType) -> Bool {
        switch (value, type) {
        case (.boolean, .boolean), (.ubyte, .ubyte), (.ushort, .ushort), (.uint, .uint), (.ulong, .ulong),
            (.byte, .byte), (.short, .short), (.int, .int), (.long, .long), (.float, .float), (.double, .double),
            (.char, .char), (.timestamp, .timestamp), (.uuid, .uuid), (.binary, .binary), (.string, .string),
            (.symbol, .symbol), (.list, .list), (.map, .map):
            return true
        case (.described(let d, let inner), .described(let descriptor, let innerType)):
            return d == descriptor && matches(inner, innerType)
        default:
            return false
        }
    }
}
