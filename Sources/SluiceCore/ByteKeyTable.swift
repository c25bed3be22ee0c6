#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open-addressing hash table from byte-string keys to `Int64` accumulators: the heart of `countByValue` and
/// `reduceByKey`.
///
/// Keys are copied once into an arena; entries keep insertion order, so iterating a table (and merging tables in a
/// fixed order) is deterministic. Nothing is allocated per record once the buffers have grown.
public final class ByteKeyTable {
    @usableFromInline struct Entry {
        @usableFromInline var hash: UInt64
        @usableFromInline var start: UInt32
        @usableFromInline var length: UInt32
        @usableFromInline var value: Int64
    }

    // A table is used by one thread at a time and never hands out references to its storage, so the dynamic
    // exclusivity checks Swift would otherwise make on every property access (a sixth of the word count's time)
    // are switched off.
    @usableFromInline @exclusivity(unchecked) var slots: UnsafeMutablePointer<Int32>
    @usableFromInline @exclusivity(unchecked) var mask: Int
    @usableFromInline @exclusivity(unchecked) var entries: UnsafeMutablePointer<Entry>
    @usableFromInline @exclusivity(unchecked) var entryCapacity: Int
    @usableFromInline @exclusivity(unchecked) var arena: UnsafeMutablePointer<UInt8>
    @usableFromInline @exclusivity(unchecked) var arenaCapacity: Int
    @usableFromInline @exclusivity(unchecked) var arenaCount = 0
    /// The number of distinct keys.
    @exclusivity(unchecked) public private(set) var count = 0

    public init(expectedKeys: Int = 1024) {
        var slotCount = 16
        while slotCount < expectedKeys * 2 { slotCount <<= 1 }
        mask = slotCount - 1
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: -1, count: slotCount)
        entryCapacity = max(8, expectedKeys)
        entries = .allocate(capacity: entryCapacity)
        arenaCapacity = max(64, expectedKeys * 8)
        arena = .allocate(capacity: arenaCapacity)
    }

    deinit {
        slots.deallocate()
        entries.deallocate()
        arena.deallocate()
    }

    /// Adds `amount` to the accumulator of `key`, inserting it with 0 first if new.
    @inlinable @inline(__always)
    public func add(_ key: UnsafeRawBufferPointer, amount: Int64) {
        add(key, hash: hashKey(key), amount: amount)
    }

    /// Adds `amount` to the accumulator of `key`, inserting it with 0 first if new. `hash` must be `hashKey(key)`.
    @inlinable
    public func add(_ key: UnsafeRawBufferPointer, hash: UInt64, amount: Int64) {
        var index = Int(truncatingIfNeeded: hash) & mask
        let length = key.count
        while true {
            let slot = Int(slots[index])
            if slot < 0 { break }
            let entry = entries[slot]
            if entry.hash == hash && Int(entry.length) == length
                && bytesEqual(arena + Int(entry.start), key.baseAddress, length)
            {
                entries[slot].value &+= amount
                return
            }
            index = (index &+ 1) & mask
        }
        insert(key, hash: hash, value: amount, at: index)
    }

    @usableFromInline
    func insert(_ key: UnsafeRawBufferPointer, hash: UInt64, value: Int64, at slotIndex: Int) {
        let length = key.count
        if arenaCount + length > arenaCapacity { growArena(arenaCount + length) }
        if length > 0 { UnsafeMutableRawPointer(arena + arenaCount).copyMemory(from: key.baseAddress!, byteCount: length) }
        if count == entryCapacity {
            let bigger = UnsafeMutablePointer<Entry>.allocate(capacity: entryCapacity * 2)
            bigger.moveInitialize(from: entries, count: count)
            entries.deallocate()
            entries = bigger
            entryCapacity *= 2
        }
        precondition(arenaCount + length <= Int(UInt32.max), "ByteKeyTable: more than 4 GiB of distinct keys")
        entries[count] = Entry(hash: hash, start: UInt32(arenaCount), length: UInt32(length), value: value)
        slots[slotIndex] = Int32(count)
        arenaCount += length
        count += 1
        if count * 2 > mask + 1 { rehash() }
    }

    func growArena(_ minimum: Int) {
        var capacity = arenaCapacity * 2
        while capacity < minimum { capacity *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        bigger.update(from: arena, count: arenaCount)
        arena.deallocate()
        arena = bigger
        arenaCapacity = capacity
    }

    func rehash() {
        let slotCount = (mask + 1) * 2
        slots.deallocate()
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: -1, count: slotCount)
        mask = slotCount - 1
        for i in 0..<count {
            var index = Int(truncatingIfNeeded: entries[i].hash) & mask
            while slots[index] >= 0 { index = (index &+ 1) & mask }
            slots[index] = Int32(i)
        }
    }

    /// Adds every entry of `other` into this table, in `other`'s insertion order.
    public func merge(_ other: ByteKeyTable) {
        merge(other, partition: 0, of: 1)
    }

    /// Adds the entries of `other` whose key falls in hash partition `partition` of `partitions`, in `other`'s
    /// insertion order.
    public func merge(_ other: ByteKeyTable, partition: Int, of partitions: Int) {
        for i in 0..<other.count {
            let entry = other.entries[i]
            if partitions > 1 && hashPartition(entry.hash, partitions) != partition { continue }
            let key = UnsafeRawBufferPointer(start: other.arena + Int(entry.start), count: Int(entry.length))
            add(key, hash: entry.hash, amount: entry.value)
        }
    }

    /// Calls `body` with each key and its accumulator, in insertion order.
    public func forEach(_ body: (UnsafeRawBufferPointer, Int64) throws -> Void) rethrows {
        for i in 0..<count {
            let entry = entries[i]
            try body(UnsafeRawBufferPointer(start: arena + Int(entry.start), count: Int(entry.length)), entry.value)
        }
    }

    /// The accumulator of `key`, or nil.
    public func value(for key: UnsafeRawBufferPointer) -> Int64? {
        let hash = hashKey(key)
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index] >= 0 {
            let entry = entries[Int(slots[index])]
            if entry.hash == hash && Int(entry.length) == key.count
                && bytesEqual(arena + Int(entry.start), key.baseAddress, key.count)
            {
                return entry.value
            }
            index = (index &+ 1) & mask
        }
        return nil
    }
}

/// The partition of `partitions` a key with this hash belongs to (bits the table's slot index does not use first).
@inlinable @inline(__always)
public func hashPartition(_ hash: UInt64, _ partitions: Int) -> Int {
    Int((hash >> 40) % UInt64(partitions))
}

/// Whether `length` bytes at `a` and `b` are equal: word by word, since keys are mostly a few bytes long and a call
/// to `memcmp` costs more than the comparison.
@inlinable @inline(__always)
func bytesEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafeRawPointer?, _ length: Int) -> Bool {
    guard length > 0, let b else { return true }
    let a = UnsafeRawPointer(a)
    var offset = 0
    while offset + 8 <= length {
        if a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            != b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        {
            return false
        }
        offset += 8
    }
    while offset < length {
        if a.load(fromByteOffset: offset, as: UInt8.self) != b.load(fromByteOffset: offset, as: UInt8.self) {
            return false
        }
        offset += 1
    }
    return true
}

/// A fast 64-bit hash of a byte string (multiply-xorshift over 8-byte words). Not for adversarial input.
@inlinable @inline(__always)
public func hashKey(_ key: UnsafeRawBufferPointer) -> UInt64 {
    let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
    var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ (UInt64(key.count) &* multiplier)
    var remaining = key.count
    guard var p = key.baseAddress else { return h }
    while remaining >= 8 {
        h = (h ^ p.loadUnaligned(as: UInt64.self)) &* multiplier
        h ^= h >> 29
        p += 8
        remaining -= 8
    }
    if remaining > 0 {
        // The last 1...7 bytes, little-endian; never reads past the key (it may end at a page boundary).
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        if remaining >= 4 {
            tail = UInt64(p.loadUnaligned(as: UInt32.self))
            shift = 32
            p += 4
            remaining -= 4
        }
        while remaining > 0 {
            tail |= UInt64(p.load(as: UInt8.self)) << shift
            shift += 8
            p += 1
            remaining -= 1
        }
        h = (h ^ tail) &* multiplier
        h ^= h >> 29
    }
    h ^= h >> 32
    h = h &* 0xBF58_476D_1CE4_E5B9
    h ^= h >> 31
    return h
}
