import CFFI
import Foundation
import SluiceCore
import Yams

#if canImport(Glibc)
import Glibc
#endif

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
