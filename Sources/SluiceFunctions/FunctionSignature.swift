import Foundation

/// The C signatures a function library may declare, and what each means to the engine.
///
/// Scalar shapes are called once per record (libffi adds 20–60 ns per call); batch shapes once per batch, which
/// makes the call nearly free per record. Prefer batch shapes.
public enum FunctionShape: Sendable, Equatable, CustomStringConvertible {
    /// `R f(A)`: map one value.
    case map(argument: NumericType, result: NumericType)
    /// `void f(const A *in, R *out, int64_t n)`: map `n` values.
    case mapBatch(argument: NumericType, result: NumericType)
    /// `bool f(A)` (or an `int32_t` that is non-zero for true): keep a record.
    case filter(argument: NumericType)
    /// `void f(const A *in, uint8_t *keep, int64_t n)`: set `keep[i]` non-zero to keep record `i`.
    case filterBatch(argument: NumericType)
    /// `T f(T a, T b)`: combine two values (associative and commutative, as Spark's reduce functions must be).
    case reduce(NumericType)
    /// `void f(const T *a, const T *b, T *out, int64_t n)`: `out[i] = a[i] ⊕ b[i]`.
    case reduceBatch(NumericType)

    /// What a manifest's `kind:` must say for this shape.
    public var kind: FunctionKind {
        switch self {
        case .map, .mapBatch: .map
        case .filter, .filterBatch: .filter
        case .reduce, .reduceBatch: .reduce
        }
    }

    public var isBatch: Bool {
        switch self {
        case .mapBatch, .filterBatch, .reduceBatch: true
        default: false
        }
    }

    /// The number type the function reads.
    public var argument: NumericType {
        switch self {
        case .map(let a, _), .mapBatch(let a, _), .filter(let a), .filterBatch(let a), .reduce(let a), .reduceBatch(let a): a
        }
    }

    public var description: String {
        switch self {
        case .map(let a, let r): "\(r)(\(a))"
        case .mapBatch(let a, let r): "void(const \(a)*, \(r)*, int64)"
        case .filter(let a): "bool(\(a))"
        case .filterBatch(let a): "void(const \(a)*, uint8*, int64)"
        case .reduce(let t): "\(t)(\(t), \(t))"
        case .reduceBatch(let t): "void(const \(t)*, const \(t)*, \(t)*, int64)"
        }
    }

    /// Every accepted shape, for error messages.
    static let accepted = """
        R(A), void(const A*, R*, int64) for map; bool(A) or int32(A), void(const A*, uint8*, int64) for filter; \
        T(T, T), void(const T*, const T*, T*, int64) for reduce — A, R, T being int64 or double
        """

    /// Parses a C signature such as `double(double)` or `void(const int64_t *in, double *out, int64_t n)`.
    /// Parameter names are allowed and ignored.
    public static func parse(_ text: String) -> FunctionShape? {
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else { return nil }
        let result = normalize(String(text[..<open]))
        let inside = text[text.index(after: open)..<text.index(before: text.endIndex)]
        let arguments = inside.split(separator: ",").map { normalize(String($0)) }.filter { $0 != "void" || inside.contains(",") }
        let num = { (name: String) -> NumericType? in NumericType(rawValue: name) }
        switch (result, arguments.count) {
        case ("bool", 1), ("int32", 1):
            return num(arguments[0]).map { .filter(argument: $0) }
        case (_, 1):
            guard let a = num(arguments[0]), let r = num(result) else { return nil }
            return .map(argument: a, result: r)
        case (_, 2):
            guard let t = num(result), arguments.allSatisfy({ $0 == t.rawValue }) else { return nil }
            return .reduce(t)
        case ("void", 3):
            guard arguments[2] == "int64", arguments[0].hasPrefix("const "), arguments[0].hasSuffix("*"),
                let a = num(String(arguments[0].dropFirst(6).dropLast())), arguments[1].hasSuffix("*")
            else { return nil }
            let out = String(arguments[1].dropLast())
            if out == "uint8" || out == "bool" { return .filterBatch(argument: a) }
            return num(out).map { .mapBatch(argument: a, result: $0) }
        case ("void", 4):
            guard arguments[3] == "int64", let t = num(String(arguments[2].dropLast())), arguments[2].hasSuffix("*"),
                arguments[0] == "const \(t.rawValue)*", arguments[1] == "const \(t.rawValue)*"
            else { return nil }
            return .reduceBatch(t)
        default:
            return nil
        }
    }

    /// `const int64_t * in` → `const int64*`: C spellings folded, parameter names dropped, spaces removed.
    private static func normalize(_ text: String) -> String {
        var words = text.replacingOccurrences(of: "*", with: " * ").split(separator: " ").map(String.init)
        // A trailing identifier that is not a type or `*` is a parameter name.
        let types: Set<String> = ["int64_t", "int64", "double", "int32_t", "int32", "int", "bool", "_Bool", "uint8_t", "uint8", "void", "const", "*"]
        if words.count > 1, let last = words.last, !types.contains(last) { words.removeLast() }
        let folded = words.map { word -> String in
            switch word {
            case "int64_t", "long": "int64"
            case "int32_t", "int": "int32"
            case "uint8_t", "unsigned char": "uint8"
            case "_Bool": "bool"
            default: word
            }
        }
        return folded.joined(separator: " ").replacingOccurrences(of: " *", with: "*")
    }
}

/// What a library function is for.
public enum FunctionKind: String, Sendable, CaseIterable {
    case map, filter, reduce
}

/// The number types a library function may take and return.
public enum NumericType: String, Sendable {
    case int64, double
}
