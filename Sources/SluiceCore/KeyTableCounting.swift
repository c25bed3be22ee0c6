import CPrefetch
import SluiceSDK

extension KeyTable where Value == Int64 {
    /// How many records ahead the slot of a key is fetched; its entry is fetched half as far ahead, once the slot is
    /// in the cache, and its key's bytes a quarter as far.
    @usableFromInline static var prefetchDistance: Int { 32 }

    /// Counts every value of `batch` (a `.bytes` batch) as a key: `countByValue`'s inner loop.
    ///
    /// A lookup in a table bigger than the cache costs three dependent misses (slot, entry, key bytes); one record
    /// at a time, the word count waits for each in turn. Hashing the whole batch first lets the loop fetch each
    /// record's slot, entry and key well before it is looked up, so the misses of many records overlap.
    /// `hashes` is scratch space, kept by the caller between batches.
    func countValues(of batch: BatchView, hashes: inout [UInt64]) {
        let n = batch.count
        if hashes.count < n { hashes = [UInt64](repeating: 0, count: n) }
        hashes.withUnsafeMutableBufferPointer { hashes in
            for i in 0..<n { hashes[i] = hashKey(batch.value(at: i)) }
            let far = Self.prefetchDistance
            let near = far / 2
            let nearest = far / 4
            for i in 0..<n {
                if i &+ far < n {
                    sluice_prefetch(slots + (Int(truncatingIfNeeded: hashes[i &+ far]) & mask))
                }
                if i &+ near < n {
                    let slot = Int(slots[Int(truncatingIfNeeded: hashes[i &+ near]) & mask])
                    if slot >= 0 { sluice_prefetch(entries + slot) }
                }
                if i &+ nearest < n {
                    let slot = Int(slots[Int(truncatingIfNeeded: hashes[i &+ nearest]) & mask])
                    if slot >= 0 { sluice_prefetch(arena + Int(entries[slot].start)) }
                }
                add(batch.value(at: i), hash: hashes[i], amount: 1)
            }
        }
    }
}
