import CFFI
import Foundation
import SluiceCore
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// A problem in a function manifest or its library, located in the manifest file.
public struct FunctionLibraryError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var keyPath: String
    public var message: String
    public var description: String { "\(file):\(line): error: \(keyPath.isEmpty ? "" : keyPath + ": ")\(message)" }
}

/// A shared library of plain C functions and the manifest that declares them: `NAME.functions.yaml` (or `.json`)
/// beside the library. Pipelines name its functions `NAME.FUNCTION`.
///
/// ```yaml
/// library: libtemps.so            # relative to the manifest
/// functions:
///   - name: to_fahrenheit         # the name pipelines use
///     symbol: c_to_f              # the C symbol (default: name)
///     kind: map                   # map, filter or reduce
///     signature: "void(const double*, double*, int64)"
/// ```
public final class FunctionLibrary: @unchecked Sendable {  // immutable after init; the library is never unloaded
    public let name: String
    public let manifestPath: String
    public let libraryPath: String
    public let functions: [String: NativeFunction]

    /// Loads a manifest and its library, preparing a libffi call for every function. Reports the first problem with
    /// the manifest's file, line and key path.
    public init(manifest path: String) throws(FunctionLibraryError) {
        manifestPath = path
        let file = URL(fileURLWithPath: path)
        name = file.lastPathComponent.components(separatedBy: ".functions.").first ?? file.lastPathComponent
        func fail(_ node: Node?, _ keyPath: String, _ message: String) -> FunctionLibraryError {
            FunctionLibraryError(file: path, line: node?.mark?.line ?? 1, keyPath: keyPath, message: message)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw fail(nil, "", "cannot read the manifest")
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw fail(nil, "", "the manifest is empty") }
            root = node
        } catch let error as FunctionLibraryError {
            throw error
        } catch {
            throw fail(nil, "", "the manifest is not valid YAML or JSON: \(error)")
        }
        guard let top = root.mapping else { throw fail(root, "", "the manifest must be a mapping with 'library' and 'functions'") }
        for key in top.keys.compactMap(\.string) where !["library", "functions"].contains(key) {
            throw fail(top.keys.first { $0.string == key }, key, "unknown key '\(key)'; expected library, functions")
        }
        guard let libraryNode = top["library"], let library = libraryNode.string, !library.isEmpty else {
            throw fail(root, "library", "missing: the shared library's file name, relative to the manifest")
        }
        libraryPath = library.hasPrefix("/") ? library : file.deletingLastPathComponent().appendingPathComponent(library).path
        guard let functionsNode = top["functions"], let list = functionsNode.sequence, !list.isEmpty else {
            throw fail(top["functions"] ?? root, "functions", "missing or empty: a list of functions")
        }
        guard let handle = dlopen(libraryPath, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw fail(libraryNode, "library", "cannot load '\(libraryPath)': \(reason)")
        }
        var functions: [String: NativeFunction] = [:]
        var inverses: [String: (String, Node, String)] = [:]
        for (index, item) in list.enumerated() {
            let path = "functions[\(index)]"
            guard let entry = item.mapping else { throw fail(item, path, "expected a mapping with name, kind, signature") }
            for key in entry.keys.compactMap(\.string) where !["name", "symbol", "kind", "signature", "inverse"].contains(key) {
                throw fail(entry.keys.first { $0.string == key }, "\(path).\(key)", "unknown key '\(key)'; expected name, symbol, kind, signature, inverse")
            }
            guard let fname = entry["name"]?.string, !fname.isEmpty else { throw fail(item, "\(path).name", "missing") }
            guard functions[fname] == nil else { throw fail(entry["name"], "\(path).name", "function '\(fname)' is declared twice") }
            guard let kindText = entry["kind"]?.string else { throw fail(item, "\(path).kind", "missing: map, filter or reduce") }
            guard let kind = FunctionKind(rawValue: kindText) else {
                throw fail(entry["kind"], "\(path).kind", "unknown kind '\(kindText)'; expected map, filter or reduce")
            }
            guard let signatureText = entry["signature"]?.string else {
                throw fail(item, "\(path).signature", "missing: the C signature, e.g. \"double(double)\"")
            }
            guard let shape = FunctionShape.parse(signatureText) else {
                throw fail(entry["signature"], "\(path).signature", "'\(signatureText)' is not a supported signature; accepted: \(FunctionShape.accepted)")
            }
            guard shape.kind == kind else {
                throw fail(entry["signature"], "\(path).signature", "'\(signatureText)' is a \(shape.kind.rawValue) signature, but kind is \(kind.rawValue)")
            }
            let symbol = entry["symbol"]?.string ?? fname
            guard let address = dlsym(handle, symbol) else {
                throw fail(entry["symbol"] ?? entry["name"], "\(path).symbol", "no symbol '\(symbol)' in \(libraryPath)")
            }
            let returnsBool = signatureText.trimmingCharacters(in: .whitespaces).hasPrefix("bool")
                || signatureText.trimmingCharacters(in: .whitespaces).hasPrefix("_Bool")
            functions[fname] = NativeFunction(name: "\(name).\(fname)", shape: shape, address: address, returnsBool: returnsBool)
            if let inverse = entry["inverse"] {
                guard kind == .reduce, let inverseName = inverse.string else {
                    throw fail(inverse, "\(path).inverse", "'inverse' names another reduce function of this library, for a reduce function")
                }
                inverses[fname] = (inverseName, inverse, "\(path).inverse")
            }
        }
        for (fname, (inverseName, node, keyPath)) in inverses {
            guard let inverse = functions[inverseName] else {
                throw fail(node, keyPath, "no function '\(inverseName)' in this manifest")
            }
            guard inverse.shape.kind == .reduce, inverse.shape.argument == functions[fname]!.shape.argument else {
                throw fail(node, keyPath, "'\(inverseName)' (\(inverse.shape)) is not a reduce function of the same type as '\(fname)'")
            }
            functions[fname]!.inverse = inverse
        }
        self.functions = functions
    }
}

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

/// A library's reduce function as a keyed operation's reducer.
public final class FunctionReducer: CustomReducer {
    public let function: NativeFunction
    public var name: String { function.name }
    public let valueType: ReducerValueType
    public var hasInverse: Bool { function.inverse != nil }

    public init(_ function: NativeFunction) {
        precondition(function.shape.kind == .reduce)
        self.function = function
        valueType = function.shape.argument == .int64 ? .int64 : .double
    }

    public func combine(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) {
        function.reduce(a, b, out, n)
    }

    public func invert(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws {
        guard let inverse = function.inverse else { throw ReducerError("\(name) has no inverse") }
        inverse.reduce(a, b, out, n)
    }
}
