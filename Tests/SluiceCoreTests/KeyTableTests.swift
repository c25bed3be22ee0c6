#if canImport(Glibc)
import Glibc
#endif
@testable import SluiceCore
import SluiceSDK
import Testing

struct ByteKeyTableTests {
    /// A deterministic pseudo-random generator, so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [1, 7, 1000, 50_000])
    func agreesWithADictionary(distinct: Int) {
        var random = SplitMix(state: UInt64(distinct))
        let table = ByteKeyTable(expectedKeys: 4)
        var reference: [[UInt8]: Int64] = [:]
        var order: [[UInt8]] = []
        for _ in 0..<(distinct * 3) {
            let id = Int.random(in: 0..<distinct, using: &random)
            // Keys of varied lengths, including the empty key and keys longer than 8 bytes.
            let key = Array("k\(id)".utf8) + [UInt8](repeating: UInt8(id % 251), count: id % 19)
            let amount = Int64.random(in: -5...5, using: &random)
            if reference[key] == nil { order.append(key) }
            reference[key, default: 0] += amount
            key.withUnsafeBytes { table.add($0, hash: hashKey($0), amount: amount) }
        }
        #expect(table.count == reference.count)
        var seen: [[UInt8]] = []
        table.forEach { key, value in
            let bytes = Array(key)
            seen.append(bytes)
            #expect(reference[bytes] == value)
        }
        #expect(seen == order, "iteration follows insertion order")
    }

    /// `countValues` (the word count's loop, which fetches slots and entries ahead) counts a batch as adding its
    /// values one by one would, also while the table grows (and moves) in the middle of the batch.
    @Test(arguments: [3, 40, 30_000])
    func countingABatchAgreesWithADictionary(distinct: Int) {
        var random = SplitMix(state: UInt64(distinct) &+ 99)
        var builder = BatchBuilder()
        var reference: [String: Int64] = [:]
        var order: [String] = []
        for _ in 0..<(distinct * 4 + 5) {
            let id = Int.random(in: 0..<distinct, using: &random)
            let word = id == 0 ? "" : "w\(id)" + String(repeating: "x", count: id % 13)
            if reference[word] == nil { order.append(word) }
            reference[word, default: 0] += 1
            builder.append(word)
        }
        let batch = OwnedBatch(builder)
        let table = ByteKeyTable(expectedKeys: 4)
        var hashes: [UInt64] = []
        table.countValues(of: batch.view, hashes: &hashes)
        #expect(table.count == reference.count)
        var seen: [String] = []
        table.forEach { key, value in
            let word = String(decoding: key, as: UTF8.self)
            seen.append(word)
            #expect(reference[word] == value, "\(word)")
        }
        #expect(seen == order, "insertion order")
    }

    @Test func emptyKeyIsAKey() {
        let table = ByteKeyTable()
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        table.add(empty, hash: hashKey(empty), amount: 2)
        table.add(empty, hash: hashKey(empty), amount: 3)
        #expect(table.count == 1)
        #expect(table.value(for: empty) == 5)
    }

    @Test func mergeAddsInOtherTablesOrder() {
        let a = ByteKeyTable()
        let b = ByteKeyTable()
        for (table, words) in [(a, ["x", "y"]), (b, ["z", "x", "w"])] {
            for word in words {
                var word = word
                word.withUTF8 { table.add(UnsafeRawBufferPointer($0), hash: hashKey(UnsafeRawBufferPointer($0)), amount: 1) }
            }
        }
        a.merge(b)
        var result: [String: Int64] = [:]
        var keys: [String] = []
        a.forEach { key, value in
            let text = String(decoding: key, as: UTF8.self)
            keys.append(text)
            result[text] = value
        }
        #expect(keys == ["x", "y", "z", "w"])
        #expect(result == ["x": 2, "y": 1, "z": 1, "w": 1])
    }

    @Test func hashDependsOnEveryByte() {
        // Keys differing only in the tail, or only in length, hash differently.
        let keys = ["abcdefgh", "abcdefgi", "abcdefghi", "abcdefgh\u{0}", "a", "b", ""]
        let hashes = Set(keys.map { key in Array(key.utf8).withUnsafeBytes { hashKey($0) } })
        #expect(hashes.count == keys.count)
    }

    @Test func everyTailLengthHashesEveryByteAndIgnoresAlignment() {
        // Keys of 0...24 bytes: flipping any one byte changes the hash (the 1...7-byte tail is read in pieces),
        // and the same key at another address hashes the same (loads are unaligned).
        let buffer = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        buffer.withUnsafeBytes { raw in
            for length in 0...24 {
                let key = UnsafeRawBufferPointer(rebasing: raw[3..<(3 + length)])
                let original = raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + 3
                var copy = Array(key)  // the same bytes at another (aligned) address
                #expect(copy.withUnsafeBytes { hashKey($0) } == hashKey(key), "length \(length)")
                #expect(copy.withUnsafeBytes { bytesEqual(original, $0.baseAddress, length) })
                for index in 0..<length {
                    copy[index] ^= 0x40
                    let changed = copy.withUnsafeBytes { hashKey($0) }
                    let equal = copy.withUnsafeBytes { bytesEqual(original, $0.baseAddress, length) }
                    #expect(changed != hashKey(key), "length \(length), byte \(index)")
                    #expect(!equal, "length \(length), byte \(index)")
                    copy[index] ^= 0x40
                }
            }
        }
    }

    /// The hash as it is defined, a byte at a time: the word loads must compute exactly this (keyed state is
    /// partitioned by it, so it may not change between versions).
    static func referenceHash(_ key: [UInt8]) -> UInt64 {
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ (UInt64(key.count) &* multiplier)
        var i = 0
        while i < key.count {
            var word: UInt64 = 0
            for j in 0..<min(8, key.count - i) { word |= UInt64(key[i + j]) << (8 * UInt64(j)) }
            h = (h ^ word) &* multiplier
            h ^= h >> 29
            i += 8
        }
        h ^= h >> 32
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        return h
    }

    @Test func keysAtTheEdgesOfAnAccessiblePageHashAndCompareWithoutReadingBeyondIt() throws {
        // Three pages, the outer two inaccessible: a key that starts a page or ends it is hashed and compared with
        // loads that must stay in the middle page (a load past it would crash the test).
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mapped = try #require(mmap(nil, 3 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(mapped != MAP_FAILED)
        defer { munmap(mapped, 3 * page) }
        let middle = mapped + page
        #expect(mprotect(middle, page, PROT_READ | PROT_WRITE) == 0)
        var generator = SplitMix(state: 7)
        for length in 1...24 {
            let key = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for start in [0, page - length] {
                let at = middle + start
                key.withUnsafeBytes { at.copyMemory(from: $0.baseAddress!, byteCount: length) }
                let inPage = UnsafeRawBufferPointer(start: at, count: length)
                #expect(hashKey(inPage) == Self.referenceHash(key), "length \(length) at \(start)")
                key.withUnsafeBytes { copy in
                    let first = copy.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    #expect(bytesEqual(first, at, length), "length \(length) at \(start)")
                    var other = key
                    other[length - 1] ^= 1
                    other.withUnsafeBytes { changed in
                        #expect(!bytesEqual(changed.baseAddress!.assumingMemoryBound(to: UInt8.self), at, length))
                    }
                }
            }
        }
    }

    @Test func theHashIsItsByteWiseDefinitionForEveryLength() {
        var generator = SplitMix(state: 11)
        for length in 0...64 {
            let key = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(key.withUnsafeBytes { hashKey($0) } == Self.referenceHash(key), "length \(length)")
        }
    }

    @Test func anEmptyKeyHashesTheSameWithOrWithoutAnAddress() {
        let withoutAddress = UnsafeRawBufferPointer(start: nil, count: 0)
        let bytes: [UInt8] = [1, 2, 3]
        let withAddress = bytes.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[1..<1]) }
        #expect(withAddress.baseAddress != nil)
        #expect(hashKey(withoutAddress) == hashKey(withAddress))
    }
}
