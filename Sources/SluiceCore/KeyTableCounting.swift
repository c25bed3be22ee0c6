import CPrefetch
import SluiceSDK

extension KeyTable where Value == Int64 {
    /// How many records ahead the slot of a key is fetched; its entry is fetched half as far ahead, once the slot is
    /// in the cache. The entry holds the key's first eight bytes, all of most words: the arena is not fetched.
    @usableFromInline static var prefetchDistance: Int { 32 }

    /// Counts every value of `batch` (a `.bytes` batch) as a key: `countByValue`'s inner loop.
    ///
    /// A lookup in a table bigger than the cache costs two dependent misses (slot, entry; a third, the arena, for
    /// keys longer than eight bytes); one record at a time, the word count waits for each in turn. Hashing a block
    /// of records first lets the loop fetch each record's slot and entry well before it is looked up, so the misses
    /// of many records overlap. `hashes` is scratch space for one block, kept by the caller between batches.
    func countValues(of batch: BatchView, hashes: inout [UInt64]) {
        let block = Self.hashBlock
        if hashes.count < block { hashes = [UInt64](repeating: 0, count: block) }
        hashes.withUnsafeMutableBufferPointer { hashes in
            var first = 0
            while first < batch.count {
                let end = min(batch.count, first + block)
                for i in first..<end { hashes[i - first] = hashKey(batch.value(at: i)) }
                countBlock(batch, first..<end, hashes)
                first = end
            }
        }
    }

    /// Records hashed ahead at a time: enough that the fetches ahead are rarely cut short at a block's end, few
    /// enough that the hashes stay in the nearest cache.
    @usableFromInline static var hashBlock: Int { 4096 }

    @inline(__always)
    private func countBlock(_ batch: BatchView, _ records: Range<Int>, _ hashes: UnsafeMutableBufferPointer<UInt64>) {
        let n = records.count
        let far = Self.prefetchDistance
        let near = far / 2
        for k in 0..<n {
            if k &+ far < n {
                sluice_prefetch(slots + (Int(truncatingIfNeeded: hashes[k &+ far]) & mask))
            }
            if k &+ near < n {
                let slot = Int(slots[Int(truncatingIfNeeded: hashes[k &+ near]) & mask])
                if slot >= 0 { sluice_prefetch(entries + slot) }
            }
            add(batch.value(at: records.lowerBound &+ k), hash: hashes[k], amount: 1)
        }
    }
}
