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

    @inlinable
    mutating func append(contentsOf source: UnsafeRawBufferPointer) where Element == UInt8 {
        let n = source.count
        guard n > 0 else { return }
        if count + n > capacity { reserve(count + n) }
        UnsafeMutableRawPointer(base.unsafelyUnwrapped + count).copyMemory(from: source.baseAddress!, byteCount: n)
        count += n
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
