import NIOCore

/// A composite type of the AMQP specification: a described list with a fixed field order (performatives, the SASL
/// frames, `source`, `target`, `error`, delivery states, message sections that are lists).
public protocol AMQPComposite: Sendable {
    /// The numeric descriptor, `domain << 32 | code` (domain 0 for the specification's types).
    static var descriptorCode: UInt64 { get }
    /// The symbolic descriptor, e.g. `amqp:open:list`.
    static var descriptorName: String { get }
    /// The number of fields the specification defines; encoding pads to it with nulls.
    static var fieldCount: Int { get }
    /// Reads the fields; a peer may leave out trailing fields (they are then null).
    init(fields: AMQPFields) throws(AMQPError)
    /// The fields in order; trailing nulls may be left out.
    var fields: [AMQPValue] { get }
}

extension AMQPComposite {
    /// The composite as an AMQP value: its numeric descriptor and all `fieldCount` fields.
    public var amqpValue: AMQPValue {
        var all = fields
        while all.count < Self.fieldCount { all.append(.null) }
        return .described(descriptor: .ulong(Self.descriptorCode), value: .list(all))
    }

    /// Whether `descriptor` (a code or a name) names this type.
    public static func isDescribed(by descriptor: AMQPValue) -> Bool {
        switch descriptor {
        case .ulong(let code): code == descriptorCode
        case .symbol(let name): name == descriptorName
        default: false
        }
    }

    /// Reads the composite from a described value, checking its descriptor.
    public init(_ value: AMQPValue) throws(AMQPError) {
        guard case .described(let descriptor, let inner) = value, Self.isDescribed(by: descriptor) else {
            throw AMQPError(.invalidValue, "expected \(Self.descriptorName), got \(value.typeName)")
        }
        guard case .list(let items) = inner else {
            throw AMQPError(.invalidValue, "\(Self.descriptorName): the fields are a \(inner.typeName), not a list")
        }
        try self.init(fields: AMQPFields(items, of: Self.descriptorName))
    }
}

/// The fields of a composite, with typed access that names the composite and the field in its errors. Fields past the
/// end of a short list read as null.
public struct AMQPFields: Sendable {
    public let values: [AMQPValue]
    let type: String

    public init(_ values: [AMQPValue], of type: String) {
        self.values = values
        self.type = type
    }

    public subscript(index: Int) -> AMQPValue { index < values.count ? values[index] : .null }

    private func wrong(_ index: Int, _ name: String, _ expected: String) -> AMQPError {
        AMQPError(.invalidValue, "\(type): field \(index) '\(name)' should be \(expected), not \(self[index].typeName)")
    }

    private func missing(_ index: Int, _ name: String) -> AMQPError {
        AMQPError(.missingField, "\(type): field \(index) '\(name)' is mandatory but absent")
    }

    public func optionalString(_ index: Int, _ name: String) throws(AMQPError) -> String? {
        switch self[index] {
        case .null: nil
        case .string(let s), .symbol(let s): s
        default: throw wrong(index, name, "a string")
        }
    }

    public func string(_ index: Int, _ name: String) throws(AMQPError) -> String {
        guard let s = try optionalString(index, name) else { throw missing(index, name) }
        return s
    }

    public func optionalUInt32(_ index: Int, _ name: String) throws(AMQPError) -> UInt32? {
        let value = self[index]
        if value.isNull { return nil }
        guard let v = value.uint64Value, let narrow = UInt32(exactly: v) else { throw wrong(index, name, "a uint") }
        return narrow
    }

    public func uint32(_ index: Int, _ name: String) throws(AMQPError) -> UInt32 {
        guard let v = try optionalUInt32(index, name) else { throw missing(index, name) }
        return v
    }

    public func optionalUInt64(_ index: Int, _ name: String) throws(AMQPError) -> UInt64? {
        let value = self[index]
        if value.isNull { return nil }
        guard let v = value.uint64Value else { throw wrong(index, name, "an unsigned integer") }
        return v
    }

    public func optionalUInt16(_ index: Int, _ name: String) throws(AMQPError) -> UInt16? {
        let value = self[index]
        if value.isNull { return nil }
        guard let v = value.uint64Value, let narrow = UInt16(exactly: v) else { throw wrong(index, name, "a ushort") }
        return narrow
    }

    public func optionalUInt8(_ index: Int, _ name: String) throws(AMQPError) -> UInt8? {
        let value = self[index]
        if value.isNull { return nil }
        guard let v = value.uint64Value, let narrow = UInt8(exactly: v) else { throw wrong(index, name, "a ubyte") }
        return narrow
    }

    public func optionalBool(_ index: Int, _ name: String) throws(AMQPError) -> Bool? {
        switch self[index] {
        case .null: nil
        case .boolean(let b): b
        default: throw wrong(index, name, "a boolean")
        }
    }

    public func bool(_ index: Int, _ name: String, default value: Bool) throws(AMQPError) -> Bool {
        try optionalBool(index, name) ?? value
    }

    public func optionalBinary(_ index: Int, _ name: String) throws(AMQPError) -> [UInt8]? {
        switch self[index] {
        case .null: nil
        case .binary(let b): b
        default: throw wrong(index, name, "binary")
        }
    }

    public func binary(_ index: Int, _ name: String) throws(AMQPError) -> [UInt8] {
        guard let b = try optionalBinary(index, name) else { throw missing(index, name) }
        return b
    }

    public func uint8(_ index: Int, _ name: String) throws(AMQPError) -> UInt8 {
        guard let v = try optionalUInt8(index, name) else { throw missing(index, name) }
        return v
    }

    /// A link role: false is a sender, true a receiver.
    public func role(_ index: Int) throws(AMQPError) -> AMQPRole {
        guard let flag = try optionalBool(index, "role") else { throw missing(index, "role") }
        return flag ? .receiver : .sender
    }

    public func optionalMap(_ index: Int, _ name: String) throws(AMQPError) -> AMQPMap? {
        switch self[index] {
        case .null: nil
        case .map(let m): m
        default: throw wrong(index, name, "a map")
        }
    }

    /// A `multiple` field of symbols: the spec allows one symbol or an array of them.
    public func symbols(_ index: Int, _ name: String) throws(AMQPError) -> [String] {
        switch self[index] {
        case .null: return []
        case .symbol(let s): return [s]
        case .array(let array):
            var names: [String] = []
            for element in array.elements {
                guard case .symbol(let s) = element else { throw wrong(index, name, "symbols") }
                names.append(s)
            }
            return names
        default: throw wrong(index, name, "a symbol or an array of symbols")
        }
    }

    /// A nested composite, or nil when the field is null.
    public func optional<T: AMQPComposite>(_ index: Int, _ name: String, as: T.Type) throws(AMQPError) -> T? {
        let value = self[index]
        if value.isNull { return nil }
        return try T(value)
    }
}

extension Array where Element == AMQPValue {
    /// Drops trailing nulls (a composite's `fields` may be short; `amqpValue` pads them back).
    func trimmingTrailingNulls() -> [AMQPValue] {
        var copy = self
        while copy.last?.isNull == true { copy.removeLast() }
        return copy
    }
}

extension AMQPValue {
    /// A `multiple` symbol field: null when empty, else an array.
    static func symbols(_ names: [String]) -> AMQPValue { names.isEmpty ? .null : .array(.symbols(names)) }

    /// An optional value or null.
    static func from<T>(_ value: T?, _ make: (T) -> AMQPValue) -> AMQPValue { value.map(make) ?? .null }
}
