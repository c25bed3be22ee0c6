import SluiceCore
import SluiceSDK

/// A type a `DStream` can carry: how it is read from and written to a batch record.
///
/// `String`, `Int64` and `Double` are values (records without keys); `Pair<V>` is a keyed record, Spark's
/// `(K, V)` with text keys.
public protocol StreamValue: Sendable {
    /// The record at `i` as this type, or nil when it is not one (the record is then dropped and counted).
    static func read(_ view: BatchView, at i: Int) -> Self?
    /// Appends this value as a record, with `key` when given.
    func append(to builder: inout BatchBuilder, key: UnsafeRawBufferPointer?)
    /// The batch column this type writes.
    static var valueType: ValueType { get }
    /// Whether records of this type have keys.
    static var keyed: Bool { get }
}

extension StreamValue {
    public static var valueType: ValueType { .bytes }
    public static var keyed: Bool { false }
}

/// Appends text as a record's value.
private func appendText(_ text: String, to builder: inout BatchBuilder, key: UnsafeRawBufferPointer?) {
    var text = text
    text.withUTF8 { utf8 in
        let bytes = UnsafeRawBufferPointer(utf8)
        if let key { builder.append(key: key, value: bytes) } else { builder.append(bytes) }
    }
}

extension String: StreamValue {
    public static func read(_ view: BatchView, at i: Int) -> String? { view.valueString(at: i) }
    public func append(to builder: inout BatchBuilder, key: UnsafeRawBufferPointer?) { appendText(self, to: &builder, key: key) }
}

extension Int64: StreamValue {
    public static func read(_ view: BatchView, at i: Int) -> Int64? { view.integer(at: i) }
    public func append(to builder: inout BatchBuilder, key: UnsafeRawBufferPointer?) {
        if let key { builder.append(key: key, value: self) } else { builder.append(self) }
    }
    public static var valueType: ValueType { .int64 }
}

extension Double: StreamValue {
    public static func read(_ view: BatchView, at i: Int) -> Double? { view.number(at: i) }
    public func append(to builder: inout BatchBuilder, key: UnsafeRawBufferPointer?) {
        appendText(String(self), to: &builder, key: key)
    }
}

/// A keyed record: Spark's `(key, value)` pair, with a text key.
public struct Pair<Value: StreamValue>: StreamValue, CustomStringConvertible {
    public var key: String
    public var value: Value

    public init(_ key: String, _ value: Value) {
        self.key = key
        self.value = value
    }

    public static func read(_ view: BatchView, at i: Int) -> Pair? {
        guard let key = view.keyString(at: i), let value = Value.read(view, at: i) else { return nil }
        return Pair(key, value)
    }

    public func append(to builder: inout BatchBuilder, key _: UnsafeRawBufferPointer?) {
        var key = key
        key.withUTF8 { value.append(to: &builder, key: UnsafeRawBufferPointer($0)) }
    }

    public static var valueType: ValueType { Value.valueType }
    public static var keyed: Bool { true }
    public var description: String { "(\(key),\(value))" }
}

extension Pair: Equatable where Value: Equatable {}
extension Pair: Hashable where Value: Hashable {}
