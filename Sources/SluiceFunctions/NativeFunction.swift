import CFFI
import Foundation
import SluiceCore
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// One C function of a library, with its libffi call interface prepared once.
public final class NativeFunction: @unchecked Sendable {  // the CIF is read-only after init; ffi_call is reentrant
    public let name: String
    public let shape: FunctionShape
    /// For a reduce function: the function that takes a value back out, if the manifest names one.
    public internal(set) var inverse: NativeFunction?
    private let address: UnsafeMutableRawPointer
    private let cif: UnsafeMutablePointer<ffi_cif>
    private let argumentTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>
    private let argumentCount: Int

    /// - Parameter returnsBool: a filter that returns C `bool` (one byte) rather than `int32_t`.
    init(name: String, shape: FunctionShape, address: UnsafeMutableRawPointer, returnsBool: Bool = false) {
        self.name = name
        self.shape = shape
        self.address = address
        let number = { (type: NumericType) in type == .int64 ? sluice_ffi_sint64()! : sluice_ffi_double()! }
        let (result, arguments): (UnsafeMutablePointer<ffi_type>, [UnsafeMutablePointer<ffi_type>]) = switch shape {
        case .map(let a, let r): (number(r), [number(a)])
        case .filter(let a): (returnsBool ? sluice_ffi_uint8()! : sluice_ffi_sint32()!, [number(a)])
        case .reduce(let t): (number(t), [number(t), number(t)])
        case .mapBatch, .filterBatch: (sluice_ffi_void()!, [sluice_ffi_pointer()!, sluice_ffi_pointer()!, sluice_ffi_sint64()!])
        case .reduceBatch: (sluice_ffi_void()!, [sluice_ffi_pointer()!, sluice_ffi_pointer()!, sluice_ffi_pointer()!, sluice_ffi_sint64()!])
        }
        argumentCount = arguments.count
        argumentTypes = .allocate(capacity: arguments.count)
        for (i, type) in arguments.enumerated() { argumentTypes[i] = type }
        cif = .allocate(capacity: 1)
        // libffi widens a return narrower than 64 bits to a full ffi_arg, so the filter's result is read as one.
        let status = ffi_prep_cif(cif, FFI_DEFAULT_ABI, UInt32(arguments.count), result, argumentTypes)
        precondition(status == FFI_OK, "ffi_prep_cif failed for \(name) (\(shape))")
    }

    deinit {
        cif.deallocate()
        argumentTypes.deallocate()
    }

    /// Calls the function with `arguments` (each pointing at one argument's value); the result is written to
    /// `result` (at least 8 bytes).
    @inline(__always)
    private func call(_ result: UnsafeMutableRawPointer?, _ arguments: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
        let function = unsafeBitCast(address, to: (@convention(c) () -> Void).self)
        ffi_call(cif, function, result, arguments)
    }

    /// Calls a batch-shaped function with `buffers` and then `n`.
    private func callBatch(_ buffers: [UnsafeRawPointer], _ n: Int) {
        var pointers: [UnsafeRawPointer?] = buffers
        var count = Int64(n)
        pointers.withUnsafeMutableBufferPointer { slots in
            withUnsafeMutablePointer(to: &count) { countSlot in
                var arguments: [UnsafeMutableRawPointer?] = (0..<slots.count).map { UnsafeMutableRawPointer(slots.baseAddress! + $0) }
                arguments.append(UnsafeMutableRawPointer(countSlot))
                arguments.withUnsafeMutableBufferPointer { call(nil, $0.baseAddress!) }
            }
        }
    }

    /// Calls a scalar function `n` times: `fill(i, slots)` sets its `arity` 8-byte arguments, `take(i, result)`
    /// receives the (widened) result.
    private func callEach(_ n: Int, arity: Int, fill: (Int, UnsafeMutablePointer<UInt64>) -> Void, take: (Int, UInt64) -> Void) {
        let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: arity)
        slots.initialize(repeating: 0, count: arity)
        defer { slots.deallocate() }
        var arguments: [UnsafeMutableRawPointer?] = (0..<arity).map { UnsafeMutableRawPointer(slots + $0) }
        var result: UInt64 = 0
        arguments.withUnsafeMutableBufferPointer { arguments in
            for i in 0..<n {
                fill(i, slots)
                call(&result, arguments.baseAddress!)
                take(i, result)
            }
        }
    }

    /// Maps `n` values (8 bytes each: `int64` or `double` bits) from `input` into `output`.
    public func map(_ input: UnsafePointer<UInt64>, _ output: UnsafeMutablePointer<UInt64>, _ n: Int) {
        switch shape {
        case .mapBatch: callBatch([UnsafeRawPointer(input), UnsafeRawPointer(output)], n)
        case .map: callEach(n, arity: 1, fill: { $1[0] = input[$0] }, take: { output[$0] = $1 })
        default: preconditionFailure("\(name) is not a map function")
        }
    }

    /// Sets `keep[i]` to whether value `i` passes the filter.
    public func filter(_ input: UnsafePointer<UInt64>, _ keep: UnsafeMutablePointer<UInt8>, _ n: Int) {
        switch shape {
        case .filterBatch: callBatch([UnsafeRawPointer(input), UnsafeRawPointer(keep)], n)
        case .filter: callEach(n, arity: 1, fill: { $1[0] = input[$0] }, take: { keep[$0] = UInt32(truncatingIfNeeded: $1) != 0 ? 1 : 0 })
        default: preconditionFailure("\(name) is not a filter function")
        }
    }

    /// `out[i] = a[i] ⊕ b[i]` for `n` pairs.
    public func reduce(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) {
        switch shape {
        case .reduceBatch: callBatch([UnsafeRawPointer(a), UnsafeRawPointer(b), UnsafeRawPointer(out)], n)
        case .reduce:
            callEach(n, arity: 2, fill: { i, slots in
                slots[0] = a[i]
                slots[1] = b[i]
            }, take: { out[$0] = $1 })
        default: preconditionFailure("\(name) is not a reduce function")
        }
    }
}
