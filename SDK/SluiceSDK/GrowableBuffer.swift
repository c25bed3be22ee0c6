// A manually managed, growable buffer of trivial values. The batch builder hands these buffers across the C ABI,
// so they are plain malloc'd memory that a C `release` callback can free.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Growable malloc'd storage for trivial elements. Not copyable: exactly one owner frees it.
@usableFromInline
struct GrowableBuffer<Element: BitwiseCopyable>: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<Element>?
    @usableFromInline var count: Int
    @usableFromInline var capacity: Int

    @inlinable
    init(capacity: Int = 0) {
        base = nil
        count = 0
        self.capacity = 0
        if capacity > 0 { reserve(capacity) }
    }

    @inlinable
    mutating func reserve(_ minimumCapacity: Int) {
        guard minimumCapacity > capacity else { return }
        let newCapacity = Swift.max(minimumCapacity, capacity * 2, 16)
        let bytes = newCapacity * MemoryLayout<Element>.stride
        guard let raw = realloc(base, bytes) else { fatalError("Sluice SDK: out of memory growing a batch to \(bytes) bytes") }
        base = raw.assumingMemoryBound(to: Element.self)
        capacity = newCapacity
    }

    @inlinable @inline(__always)
    mutating func append(_ element: Element) {
        if count == capacity { reserve(count + 1) }
        base.unsafelyUnwrapped[count] = element
        count += 1
    }

    /// Appends bytes. Up to 16 are copied as one or two words instead of a call to `memmove` (a flatMap appends
    /// millions of words of a few bytes): the buffer keeps 8 bytes spare past its end for a word stored whole.
    @inlinable @inline(__always)
    mutating func append(contentsOf source: UnsafeRawBufferPointer) where Element == UInt8 {
        let n = source.count
        guard n > 0, let from = source.baseAddress else { return }
        if count &+ n &+ 8 > capacity { reserve(count &+ n &+ 8) }
        let to = UnsafeMutableRawPointer(base.unsafelyUnwrapped + count)
        if n <= 8 {
            to.storeBytes(of: UInt64(littleEndian: loadBytes(from, count: n)), as: UInt64.self)
        } else if n <= 16 {
            // The first eight bytes and the last eight, which overlap them unless there are sixteen.
            to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self), toByteOffset: n &- 8, as: UInt64.self)
        } else {
            to.copyMemory(from: from, byteCount: n)
        }
        count &+= n
    }

    /// Gives up ownership of the memory; the caller must `free` it.
    @inlinable
    mutating func take() -> UnsafeMutablePointer<Element>? {
        let p = base
        base = nil
        count = 0
        capacity = 0
        return p
    }

    @inlinable
    subscript(i: Int) -> Element {
        get { base.unsafelyUnwrapped[i] }
        nonmutating set { base.unsafelyUnwrapped[i] = newValue }
    }

    @inlinable deinit { free(base) }
}
