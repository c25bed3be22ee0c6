#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SluiceSDK

/// The table of `countByValue`: byte-string keys to `Int64` counts.
public typealias ByteKeyTable = KeyTable<Int64>

/// An open-addressing hash table from byte-string keys to fixed-size values: the heart of every keyed operator.
///
/// Keys are copied once into an arena; entries keep insertion order, so iterating a table (and merging tables in a
/// fixed order) is deterministic. Nothing is allocated per record once the buffers have grown. Removing a key
/// (windows drop keys that left them) marks its entry dead and shifts the probe chain back; dead entries are
/// reclaimed by `compact()` once they are the majority.
public final class KeyTable<Value: BitwiseCopyable> {
    @usableFromInline struct Entry {
        @usableFromInline var hash: UInt64
        /// The key's first eight bytes (`keyPrefix`): a lookup compares them here, and only a longer key's other
        /// bytes in the arena, so that most words cost one cache miss (the entry) instead of two (entry, arena).
        @usableFromInline var prefix: UInt64
        /// Offset of the key in the arena; `UInt32.max` marks a removed entry.
        @usableFromInline var start: UInt32
        @usableFromInline var length: UInt32
        @usableFromInline var value: Value
    }

    // A table is used by one thread at a time and never hands out references to its storage, so the dynamic
    // exclusivity checks Swift would otherwise make on every property access (a sixth of the word count's time)
    // are switched off.
    @usableFromInline @exclusivity(unchecked) var slots: UnsafeMutablePointer<Int32>
    @usableFromInline @exclusivity(unchecked) var mask: Int
    @usableFromInline @exclusivity(unchecked) var entries: UnsafeMutablePointer<Entry>
    @usableFromInline @exclusivity(unchecked) var entryCapacity: Int
    /// Entries in use, dead ones included: the end of the entries array.
    @usableFromInline @exclusivity(unchecked) var entryCount = 0
    @usableFromInline @exclusivity(unchecked) var arena: UnsafeMutablePointer<UInt8>
    @usableFromInline @exclusivity(unchecked) var arenaCapacity: Int
    @usableFromInline @exclusivity(unchecked) var arenaCount = 0
    /// The number of distinct (live) keys.
    @exclusivity(unchecked) public private(set) var count = 0
    /// Bytes that values keep outside the entry (text accumulators), in insertion order of the bytes.
    @exclusivity(unchecked) var valueBytes = ByteArena()

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

    /// Where `key` is: the index of its entry (0 or more), or, when it is absent, `~slot` for the empty slot where
    /// it would go (negative). `hash` must be `hashKey(key)`. The one probe loop of every lookup.
    @inlinable @inline(__always)
    func probe(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int {
        var index = Int(truncatingIfNeeded: hash) & mask
        let length = key.count
        let prefix = keyPrefix(key)
        while true {
            let slot = Int(slots[index])
            if slot < 0 { return ~index }
            let entry = entries[slot]
            if entry.hash == hash && entry.prefix == prefix && Int(entry.length) == length
                && (length <= 8 || bytesEqual(arena + Int(entry.start) + 8, key.baseAddress! + 8, length &- 8))
            {
                return slot
            }
            index = (index &+ 1) & mask
        }
    }

    /// The entry index of `key`, or nil. `hash` must be `hashKey(key)`.
    @inlinable
    public func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let found = probe(key, hash: hash)
        return found >= 0 ? found : nil
    }

    /// Updates the value of `key` with `update`, or inserts `initial()` when the key is new. `hash` must be
    /// `hashKey(key)`. Returns the entry index.
    @inlinable @discardableResult
    public func upsert(
        _ key: UnsafeRawBufferPointer,
        hash: UInt64,
        initial: () -> Value,
        update: (inout Value) -> Void
    ) -> Int {
        let found = probe(key, hash: hash)
        if found >= 0 {
            update(&entries[found].value)
            return found
        }
        return insert(key, hash: hash, value: initial(), at: ~found)
    }

    @usableFromInline
    func insert(_ key: UnsafeRawBufferPointer, hash: UInt64, value: Value, at slotIndex: Int) -> Int {
        let length = key.count
        if arenaCount + length > arenaCapacity { growArena(arenaCount + length) }
        if length > 0 { UnsafeMutableRawPointer(arena + arenaCount).copyMemory(from: key.baseAddress!, byteCount: length) }
        if entryCount == entryCapacity {
            let bigger = UnsafeMutablePointer<Entry>.allocate(capacity: entryCapacity * 2)
            bigger.moveInitialize(from: entries, count: entryCount)
            entries.deallocate()
            entries = bigger
            entryCapacity *= 2
        }
        precondition(arenaCount + length < Int(UInt32.max), "KeyTable: more than 4 GiB of distinct keys")
        let index = entryCount
        entries[index] = Entry(
            hash: hash, prefix: keyPrefix(key), start: UInt32(arenaCount), length: UInt32(length), value: value
        )
        slots[slotIndex] = Int32(index)
        arenaCount += length
        entryCount += 1
        count += 1
        if entryCount * 2 > mask + 1 { rehash() }
        return index
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
        var slotCount = mask + 1
        while entryCount * 2 > slotCount { slotCount *= 2 }
        slots.deallocate()
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: -1, count: slotCount)
        mask = slotCount - 1
        for i in 0..<entryCount where entries[i].start != UInt32.max {
            var index = Int(truncatingIfNeeded: entries[i].hash) & mask
            while slots[index] >= 0 { index = (index &+ 1) & mask }
            slots[index] = Int32(i)
        }
    }

    /// Bytes the table has allocated: slots, entries, key arena and value bytes (capacity, not use).
    public var allocatedBytes: Int {
        (mask + 1) * MemoryLayout<Int32>.stride + entryCapacity * MemoryLayout<Entry>.stride + arenaCapacity
            + valueBytes.capacityBytes
    }

    // MARK: Entries

    /// The live entry indices, in insertion order.
    public var indices: [Int] { (0..<entryCount).filter { entries[$0].start != UInt32.max } }

    /// Calls `body` with each live entry index, in insertion order.
    @inlinable
    public func forEachIndex(_ body: (Int) throws -> Void) rethrows {
        for i in 0..<entryCount where entries[i].start != UInt32.max { try body(i) }
    }

    /// The key of entry `index`, valid until the table changes.
    @inlinable
    public func key(at index: Int) -> UnsafeRawBufferPointer {
        let entry = entries[index]
        return UnsafeRawBufferPointer(start: arena + Int(entry.start), count: Int(entry.length))
    }

    @inlinable public func hash(at index: Int) -> UInt64 { entries[index].hash }
    /// Whether entry `index` holds a key (it was not removed since the last `compact()`).
    @inlinable public func isLive(at index: Int) -> Bool { index < entryCount && entries[index].start != UInt32.max }
    @inlinable public func value(at index: Int) -> Value { entries[index].value }
    @inlinable public func setValue(_ value: Value, at index: Int) { entries[index].value = value }

    /// Removes the key of entry `index`. Other entries keep their indices until `compact()`.
    public func remove(at index: Int) {
        let hash = entries[index].hash
        var hole = Int(truncatingIfNeeded: hash) & mask
        while Int(slots[hole]) != index { hole = (hole &+ 1) & mask }
        // Backward-shift deletion: pull later members of the probe run into the hole so lookups need no tombstones.
        var next = (hole &+ 1) & mask
        while slots[next] >= 0 {
            let home = Int(truncatingIfNeeded: entries[Int(slots[next])].hash) & mask
            let distanceFromHome = (next &- home) & mask
            let distanceToHole = (next &- hole) & mask
            if distanceFromHome >= distanceToHole {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next &+ 1) & mask
        }
        slots[hole] = -1
        entries[index].start = UInt32.max
        count -= 1
    }

    /// Whether removed entries are the majority, so that `compact()` would pay.
    public var needsCompaction: Bool { entryCount > 64 && count * 2 < entryCount }

    /// Drops removed entries and the arena bytes of their keys, keeping the order of the live ones. Entry indices
    /// change.
    public func compact() {
        let newArena = UnsafeMutablePointer<UInt8>.allocate(capacity: max(64, arenaCapacity))
        var newCount = 0
        var used = 0
        for i in 0..<entryCount where entries[i].start != UInt32.max {
            var entry = entries[i]
            let length = Int(entry.length)
            (newArena + used).update(from: arena + Int(entry.start), count: length)
            entry.start = UInt32(used)
            used += length
            entries[newCount] = entry
            newCount += 1
        }
        arena.deallocate()
        arena = newArena
        arenaCount = used
        entryCount = newCount
        count = newCount
        rehash()
    }
}

extension KeyTable where Value == Int64 {
    /// Adds `amount` to the accumulator of `key`, inserting it with 0 first if new.
    @inlinable @inline(__always)
    public func add(_ key: UnsafeRawBufferPointer, amount: Int64) {
        add(key, hash: hashKey(key), amount: amount)
    }

    /// Adds `amount` to the accumulator of `key`, inserting it with 0 first if new. `hash` must be `hashKey(key)`.
    @inlinable @inline(__always)
    public func add(_ key: UnsafeRawBufferPointer, hash: UInt64, amount: Int64) {
        let found = probe(key, hash: hash)
        if found >= 0 {
            entries[found].value &+= amount
        } else {
            insert(key, hash: hash, value: amount, at: ~found)
        }
    }

    /// Adds every entry of `other` into this table, in `other`'s insertion order.
    public func merge(_ other: KeyTable<Int64>) {
        merge(other, partition: 0, of: 1)
    }

    /// Adds the entries of `other` whose key falls in hash partition `partition` of `partitions`, in `other`'s
    /// insertion order.
    public func merge(_ other: KeyTable<Int64>, partition: Int, of partitions: Int) {
        other.forEachIndex { i in
            let hash = other.hash(at: i)
            if partitions > 1 && hashPartition(hash, partitions) != partition { return }
            add(other.key(at: i), hash: hash, amount: other.value(at: i))
        }
    }

    /// Calls `body` with each key and its accumulator, in insertion order.
    public func forEach(_ body: (UnsafeRawBufferPointer, Int64) throws -> Void) rethrows {
        try forEachIndex { i in try body(key(at: i), value(at: i)) }
    }

    /// The accumulator of `key`, or nil.
    public func value(for key: UnsafeRawBufferPointer) -> Int64? {
        find(key, hash: hashKey(key)).map { value(at: $0) }
    }
}

/// Growable bytes for values kept outside a table's entries.
struct ByteArena: ~Copyable {
    private(set) var base: UnsafeMutablePointer<UInt8>?
    private(set) var count = 0
    private var capacity = 0
    var capacityBytes: Int { capacity }

    init() {}
    deinit { base?.deallocate() }

    /// Appends `bytes`; returns where they start.
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let start = count
        if count + bytes.count > capacity {
            let newCapacity = max(256, capacity * 2, count + bytes.count)
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            if let base { bigger.update(from: base, count: count) }
            base?.deallocate()
            base = bigger
            capacity = newCapacity
        }
        if let from = bytes.baseAddress, bytes.count > 0 {
            UnsafeMutableRawPointer(base! + count).copyMemory(from: from, byteCount: bytes.count)
        }
        count += bytes.count
        precondition(count < Int(UInt32.max), "KeyTable: more than 4 GiB of value bytes")
        return UInt32(start)
    }

    func bytes(at start: UInt32, count length: UInt32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base.map { UnsafeRawPointer($0 + Int(start)) }, count: Int(length))
    }
}

/// The partition of `partitions` a key with this hash belongs to (bits the table's slot index does not use first).
@inlinable @inline(__always)
public func hashPartition(_ hash: UInt64, _ partitions: Int) -> Int {
    Int((hash >> 40) % UInt64(partitions))
}

/// Whether `length` bytes at `a` and `b` are equal: word by word, since keys are mostly a few bytes long and a call
/// to `memcmp` costs more than the comparison. Every length takes whole-word loads (the last one overlapping the one
/// before, or masked for keys of up to 8 bytes): a byte loop whose trip count changes with every word mispredicts.
@inlinable @inline(__always)
func bytesEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafeRawPointer?, _ length: Int) -> Bool {
    guard length > 0, let b else { return true }
    let a = UnsafeRawPointer(a)
    if length <= 8 { return loadBytes(a, count: length) == loadBytes(b, count: length) }
    var offset = 0
    while offset &+ 8 < length {
        if a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            != b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        {
            return false
        }
        offset &+= 8
    }
    // The last 1...8 bytes, as the word that ends with them (it overlaps bytes compared above).
    return a.loadUnaligned(fromByteOffset: length &- 8, as: UInt64.self)
        == b.loadUnaligned(fromByteOffset: length &- 8, as: UInt64.self)
}

/// The first (up to) eight bytes of `key`, zero-extended: what a table entry keeps of its key besides the arena.
@inlinable @inline(__always)
func keyPrefix(_ key: UnsafeRawBufferPointer) -> UInt64 {
    guard let base = key.baseAddress, key.count > 0 else { return 0 }
    return loadBytes(base, count: min(key.count, 8))
}

/// A fast 64-bit hash of a byte string (multiply-xorshift over 8-byte words). Not for adversarial input.
@inlinable @inline(__always)
public func hashKey(_ key: UnsafeRawBufferPointer) -> UInt64 {
    let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
    var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ (UInt64(key.count) &* multiplier)
    var remaining = key.count
    // An empty key hashes the same whether or not its buffer has an address.
    var p = key.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
    if remaining == 0 { p = UnsafeRawPointer(bitPattern: 1)! }
    while remaining >= 8 {
        h = (h ^ p.loadUnaligned(as: UInt64.self)) &* multiplier
        h ^= h >> 29
        p += 8
        remaining -= 8
    }
    if remaining > 0 {
        // The last 1...7 bytes, little-endian and zero-extended.
        h = (h ^ loadBytes(p, count: remaining)) &* multiplier
        h ^= h >> 29
    }
    h ^= h >> 32
    h = h &* 0xBF58_476D_1CE4_E5B9
    h ^= h >> 31
    return h
}
