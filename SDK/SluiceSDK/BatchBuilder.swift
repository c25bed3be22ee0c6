import CSluice

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a batch column by column, then hands it across the ABI with `finish(into:)`.
///
/// Appending a record copies its bytes into the builder's buffers; nothing is allocated per record (buffers grow
/// geometrically). The finished batch owns the buffers and frees them in its `release` callback.
public struct BatchBuilder: ~Copyable {
    public let valueType: ValueType
    public let hasKeys: Bool
    public let hasTimestamps: Bool
    @usableFromInline var _count: Int = 0
    /// The number of records appended so far.
    public var count: Int { _count }

    @usableFromInline var valueData = GrowableBuffer<UInt8>()
    @usableFromInline var valueOffsets = GrowableBuffer<UInt32>()
    @usableFromInline var intValues = GrowableBuffer<Int64>()
    @usableFromInline var keyData = GrowableBuffer<UInt8>()
    @usableFromInline var keyOffsets = GrowableBuffer<UInt32>()
    @usableFromInline var keyValidity = GrowableBuffer<UInt8>()
    @usableFromInline var hasAbsentKey = false
    @usableFromInline var timestamps = GrowableBuffer<Int64>()
    @usableFromInline var passthroughSource: sluice_batch? = nil

    /// - Parameters:
    ///   - valueType: `.bytes` for text and binary values, `.int64` for counts and sums.
    ///   - keyed: whether records carry a key.
    ///   - timestamps: whether records carry a timestamp.
    ///   - expectedCount: a capacity hint in records.
    ///   - expectedBytes: a capacity hint in value bytes.
    public init(
        valueType: ValueType = .bytes,
        keyed: Bool = false,
        timestamps: Bool = false,
        expectedCount: Int = 0,
        expectedBytes: Int = 0
    ) {
        self.valueType = valueType
        self.hasKeys = keyed
        self.hasTimestamps = timestamps
        switch valueType {
        case .bytes:
            valueOffsets.reserve(expectedCount + 1)
            valueOffsets.append(0)
            valueData.reserve(expectedBytes)
        case .int64:
            intValues.reserve(expectedCount)
        }
        if keyed {
            keyOffsets.reserve(expectedCount + 1)
            keyOffsets.append(0)
        }
        if timestamps { self.timestamps.reserve(expectedCount) }
    }

    /// The number of value bytes appended so far.
    public var valueByteCount: Int { valueData.count }

    // MARK: Appending values

    @inlinable @inline(__always)
    mutating func endValue() {
        let end = valueData.count
        precondition(end <= Int(UInt32.max), "Sluice SDK: a batch's value data may not exceed 4 GiB")
        valueOffsets.append(UInt32(truncatingIfNeeded: end))
    }

    /// Appends a record whose value is `bytes`.
    @inlinable @inline(__always)
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        precondition(valueType == .bytes, "Sluice SDK: append(bytes) on an .int64 batch")
        valueData.append(contentsOf: bytes)
        endValue()
        recordAppended()
    }

    /// Appends a record whose value is the UTF-8 of `text`.
    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends a record whose value is `value` (on an `.int64` batch).
    @inlinable
    public mutating func append(_ value: Int64) {
        precondition(valueType == .int64, "Sluice SDK: append(Int64) on a .bytes batch")
        intValues.append(value)
        recordAppended()
    }

    /// Appends a keyed record.
    @inlinable
    public mutating func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        appendKey(key)
        append(value)
    }

    /// Appends a keyed record with an integer value.
    @inlinable
    public mutating func append(key: UnsafeRawBufferPointer, value: Int64) {
        appendKey(key)
        append(value)
    }

    /// Appends a keyed record from text.
    public mutating func append(key: String, value: String) {
        var key = key
        key.withUTF8 { appendKey(UnsafeRawBufferPointer($0)) }
        append(value)
    }

    /// Sets the timestamp of the record appended last (milliseconds since the Unix epoch).
    @inlinable
    public mutating func setLastTimestamp(_ milliseconds: Int64) {
        precondition(hasTimestamps && timestamps.count == count, "Sluice SDK: setLastTimestamp without a record")
        timestamps[count - 1] = milliseconds
    }

    @inlinable
    mutating func appendKey(_ key: UnsafeRawBufferPointer) {
        precondition(hasKeys, "Sluice SDK: a keyed append on a builder made with keyed: false")
        keyData.append(contentsOf: key)
        precondition(keyData.count <= Int(UInt32.max), "Sluice SDK: a batch's key data may not exceed 4 GiB")
        keyOffsets.append(UInt32(truncatingIfNeeded: keyData.count))
    }

    @inlinable @inline(__always)
    mutating func recordAppended() {
        if hasKeys && keyOffsets.count == count + 1 {
            // An unkeyed append on a keyed builder: an absent key.
            keyOffsets.append(UInt32(truncatingIfNeeded: keyData.count))
            markKeyAbsent(count)
        } else if hasAbsentKey {
            markKeyPresent(count)
        }
        if hasTimestamps { timestamps.append(0) }
        _count += 1
    }

    @usableFromInline
    mutating func markKeyAbsent(_ index: Int) {
        if !hasAbsentKey {
            hasAbsentKey = true
            for i in 0..<index { markKeyPresent(i) }
        }
        let byte = index >> 3
        while keyValidity.count <= byte { keyValidity.append(0) }
        keyValidity[byte] &= ~(1 << UInt8(index & 7))
    }

    @usableFromInline
    mutating func markKeyPresent(_ index: Int) {
        let byte = index >> 3
        while keyValidity.count <= byte { keyValidity.append(0) }
        keyValidity[byte] |= 1 << UInt8(index & 7)
    }

    // MARK: Pass-through

    /// Makes the output the input itself, without copying: a no-op transform. The host keeps the input alive
    /// until it releases the output (ABI: an output may point into its input's buffers).
    public mutating func passthrough(_ input: BatchView) {
        passthroughSource = input.raw
        _count = input.count
    }

    // MARK: Finishing

    /// Moves the built columns into `out`, which takes ownership: its `release` frees them.
    public consuming func finish(into out: UnsafeMutablePointer<sluice_batch>) {
        var batch = sluice_batch()
        batch.struct_size = UInt32(MemoryLayout<sluice_batch>.size)
        if var source = passthroughSource {
            source.release = sluiceSDKReleaseNothing
            source.private_data = nil
            source.struct_size = batch.struct_size
            out.pointee = source
            return
        }
        batch.value_type = valueType.rawValue
        batch.count = UInt64(count)
        let owned = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: ownedSlots)
        owned.initialize(repeating: nil, count: ownedSlots)
        switch valueType {
        case .bytes:
            batch.value_data_len = UInt64(valueData.count)
            let data = valueData.take()
            let offsets = valueOffsets.take()
            batch.value_data = UnsafePointer(data)
            batch.value_offsets = UnsafePointer(offsets)
            owned[0] = UnsafeMutableRawPointer(data)
            owned[1] = UnsafeMutableRawPointer(offsets)
        case .int64:
            batch.value_data_len = UInt64(intValues.count * 8)
            let ints = intValues.take()
            batch.value_data = UnsafeRawPointer(ints).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) }
            owned[0] = UnsafeMutableRawPointer(ints)
        }
        if hasKeys {
            batch.key_data_len = UInt64(keyData.count)
            let data = keyData.take()
            let offsets = keyOffsets.take()
            batch.key_data = UnsafePointer(data)
            batch.key_offsets = UnsafePointer(offsets)
            owned[2] = UnsafeMutableRawPointer(data)
            owned[3] = UnsafeMutableRawPointer(offsets)
            if hasAbsentKey {
                let validity = keyValidity.take()
                batch.key_validity = UnsafePointer(validity)
                owned[4] = UnsafeMutableRawPointer(validity)
            }
        }
        if hasTimestamps {
            let ts = timestamps.take()
            batch.timestamps = UnsafePointer(ts)
            owned[5] = UnsafeMutableRawPointer(ts)
        }
        batch.private_data = UnsafeMutableRawPointer(owned)
        batch.release = sluiceSDKReleaseOwned
        out.pointee = batch
    }
}

@usableFromInline let ownedSlots = 6

/// Frees the buffers of a batch finished by a `BatchBuilder`.
private func sluiceSDKReleaseOwned(_ batch: UnsafeMutablePointer<sluice_batch>?) {
    guard let batch, let privateData = batch.pointee.private_data else { return }
    let owned = privateData.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    for i in 0..<ownedSlots { free(owned[i]) }
    owned.deallocate()
    batch.pointee.private_data = nil
    batch.pointee.release = nil
}

/// The release of a pass-through batch: its buffers belong to the input batch.
private func sluiceSDKReleaseNothing(_ batch: UnsafeMutablePointer<sluice_batch>?) {
    batch?.pointee.release = nil
}
