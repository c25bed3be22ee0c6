import CSluice

/// The type of a batch's value column.
public enum ValueType: UInt32, Sendable {
    /// Variable-length bytes (text, JSON, anything).
    case bytes = 0
    /// One signed 64-bit integer per record.
    case int64 = 1
}

/// A read-only view of a batch that crossed (or is about to cross) the plugin boundary.
///
/// A view does not own the batch: it is valid only while the batch it was made from is alive. For a batch handed to
/// a plugin callback that is the duration of the call. Reading a record never copies or allocates.
public struct BatchView: @unchecked Sendable {  // plain pointers into memory whose lifetime the ABI defines
    public let count: Int
    public let valueType: ValueType
    @usableFromInline let valueOffsets: UnsafePointer<UInt32>?
    @usableFromInline let valueData: UnsafePointer<UInt8>?
    @usableFromInline let keyOffsets: UnsafePointer<UInt32>?
    @usableFromInline let keyData: UnsafePointer<UInt8>?
    @usableFromInline let keyValidity: UnsafePointer<UInt8>?
    @usableFromInline let timestamps: UnsafePointer<Int64>?
    /// The raw C batch this view reads.
    public let raw: sluice_batch

    /// Makes a view of a C batch. The batch's buffers must outlive the view.
    public init(_ batch: sluice_batch) {
        raw = batch
        count = Int(batch.count)
        valueType = ValueType(rawValue: batch.value_type) ?? .bytes
        valueOffsets = batch.value_offsets
        valueData = batch.value_data
        keyOffsets = batch.key_offsets
        keyData = batch.key_data
        keyValidity = batch.key_validity
        timestamps = batch.timestamps
    }

    /// Makes a view of the batch `pointer` points to.
    public init(_ pointer: UnsafePointer<sluice_batch>) { self.init(pointer.pointee) }

    /// Whether the records carry keys.
    @inlinable public var hasKeys: Bool { keyOffsets != nil }

    /// Whether the records carry timestamps.
    @inlinable public var hasTimestamps: Bool { timestamps != nil }

    /// The value bytes of record `i` (for a `.bytes` batch). Valid while the batch is alive.
    @inlinable @inline(__always)
    public func value(at i: Int) -> UnsafeRawBufferPointer {
        let offsets = valueOffsets.unsafelyUnwrapped
        let start = Int(offsets[i])
        let end = Int(offsets[i &+ 1])
        return UnsafeRawBufferPointer(start: valueData.map { UnsafeRawPointer($0 + start) }, count: end &- start)
    }

    /// The integer value of record `i` (for an `.int64` batch).
    @inlinable @inline(__always)
    public func int64Value(at i: Int) -> Int64 {
        UnsafeRawPointer(valueData.unsafelyUnwrapped).loadUnaligned(fromByteOffset: i &* 8, as: Int64.self)
    }

    /// The key bytes of record `i`, or nil when the batch has no keys or this record's key is absent.
    @inlinable @inline(__always)
    public func key(at i: Int) -> UnsafeRawBufferPointer? {
        guard let offsets = keyOffsets else { return nil }
        if let validity = keyValidity, validity[i >> 3] & (1 << UInt8(i & 7)) == 0 { return nil }
        let start = Int(offsets[i])
        let end = Int(offsets[i &+ 1])
        return UnsafeRawBufferPointer(start: keyData.map { UnsafeRawPointer($0 + start) }, count: end &- start)
    }

    /// The timestamp of record `i` in milliseconds since the Unix epoch, or nil when the batch has none.
    @inlinable
    public func timestamp(at i: Int) -> Int64? { timestamps?[i] }

    /// The value of record `i` decoded as UTF-8 text (invalid sequences are repaired). Allocates; for display.
    public func valueString(at i: Int) -> String {
        switch valueType {
        case .bytes: return String(decoding: value(at: i), as: UTF8.self)
        case .int64: return String(int64Value(at: i))
        }
    }

    /// The key of record `i` as UTF-8 text, or nil. Allocates; for display.
    public func keyString(at i: Int) -> String? {
        key(at: i).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Record `i` rendered the way Spark's `print()` and `saveAsTextFiles` show it: `(key,value)` for a keyed
    /// record, the bare value otherwise.
    public func displayString(at i: Int) -> String {
        if let key = keyString(at: i) { return "(\(key),\(valueString(at: i)))" }
        return valueString(at: i)
    }
}
