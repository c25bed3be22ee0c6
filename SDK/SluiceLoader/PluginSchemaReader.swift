import SluiceSDK

/// Reads a plugin's configuration schema without Foundation, for `PluginSchema(json:)`: a small JSON parser into
/// typed values (no `Any`, so no dynamic casts), then the schema's fields.
///
/// It reads exactly as `PluginSchema(foundationJSON:)` does, or not at all: `schema` returns nil for anything it
/// might read differently — text that is not valid JSON as it understands it, a field of an unexpected type, a
/// repeated key, a number with an exponent, a default whose text JSONSerialization would write another way (a
/// fraction, control characters, a non-empty object) — and the caller then takes JSONSerialization's reading, error
/// included.
enum PluginSchemaReader {
    /// A parsed JSON value. Numbers keep their text; objects refuse repeated keys.
    indirect enum Value {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([Value])
        case object([String: Value])
    }

    /// The schema in `json`, or nil when it is to be read by JSONSerialization.
    static func schema(_ json: String) -> PluginSchema? {
        var parser = Parser(bytes: Array(json.utf8))
        guard case .object(let root)? = parser.document() else { return nil }
        if let type = root["type"] {
            guard case .string("object") = type else { return nil }
        }
        var properties: [String: Value] = [:]
        if let value = root["properties"] {
            guard case .object(let fields) = value else { return nil }
            properties = fields
        }
        guard let required = strings(root["required"]), let open = flag(root["additionalProperties"]) else { return nil }
        var options: [PluginSchema.Option] = []
        for (name, value) in properties {
            guard case .object(let property) = value,
                let type = string(property["type"]), let description = string(property["description"]),
                let allowed = strings(property["enum"]), let format = string(property["format"]),
                let writeOnly = flag(property["writeOnly"]), let pattern = string(property["pattern"])
            else { return nil }
            var defaultJSON: String?
            if let value = property["default"] {
                guard let text = written(value) else { return nil }
                defaultJSON = text
            }
            options.append(
                PluginSchema.Option(
                    name: name,
                    kind: type.flatMap(PluginSchema.Option.Kind.init(rawValue:)) ?? .any,
                    description: description ?? "",
                    defaultJSON: defaultJSON,
                    allowed: allowed ?? [],
                    required: required?.contains(name) ?? false,
                    isPath: format == "path" || format == "output-path",
                    isSecret: writeOnly == true,
                    isOutputPath: format == "output-path",
                    pattern: pattern
                )
            )
        }
        return PluginSchema(options: options, closed: open == false)
    }

    // The field readers: `.some(nil)` for a missing field, nil for one of another type.

    private static func string(_ value: Value?) -> String?? {
        switch value {
        case nil: .some(nil)
        case .string(let text)?: .some(text)
        default: nil
        }
    }

    private static func flag(_ value: Value?) -> Bool?? {
        switch value {
        case nil: .some(nil)
        case .bool(let flag)?: .some(flag)
        default: nil
        }
    }

    private static func strings(_ value: Value?) -> [String]?? {
        switch value {
        case nil: return .some(nil)
        case .array(let items)?:
            var texts: [String] = []
            for item in items {
                guard case .string(let text) = item else { return nil }
                texts.append(text)
            }
            return .some(texts)
        default: return nil
        }
    }

    /// `value` as JSONSerialization writes it (compact, slashes escaped), or nil when this cannot be sure of that.
    static func written(_ value: Value) -> String? {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let text):
            // Plain integers come back as written (with at most 18 digits, well inside Int64); "-0" is written "0",
            // fractions and exponents as a double or a decimal is: those are left to JSONSerialization.
            let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
            guard digits.count <= 18, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits != "0" || text == "0" else {
                return nil
            }
            return text
        case .string(let text):
            // jsonQuoted's escapes, and slashes escaped too, as JSONSerialization does; it writes other control
            // characters its own way, so those are left to it.
            let plain = text.unicodeScalars.allSatisfy { scalar in
                scalar.value >= 0x20 && scalar.value != 0x7F && scalar != "\u{2028}" && scalar != "\u{2029}"
                    || scalar == "\n" || scalar == "\r" || scalar == "\t"
            }
            return plain ? jsonQuoted(text).replacing("/", with: "\\/") : nil
        case .array(let items):
            var parts: [String] = []
            for item in items {
                guard let part = written(item) else { return nil }
                parts.append(part)
            }
            return "[" + parts.joined(separator: ",") + "]"
        case .object(let fields):
            // JSONSerialization's sorted keys follow its own collation: only the empty object is certain.
            return fields.isEmpty ? "{}" : nil
        }
    }

    /// RFC 8259 JSON, strictly; nil on anything else.
    struct Parser {
        let bytes: [UInt8]
        var position = 0
        var depth = 0
        /// Deeper nesting is left to JSONSerialization (a schema is two or three levels deep).
        static let maximumDepth = 64

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func document() -> Value? {
            skipSpace()
            guard let value = value() else { return nil }
            skipSpace()
            return position == bytes.count ? value : nil
        }

        private var next: UInt8? { position < bytes.count ? bytes[position] : nil }

        private mutating func skipSpace() {
            while let byte = next, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard next == byte else { return false }
            position += 1
            return true
        }

        private mutating func value() -> Value? {
            guard let byte = next else { return nil }
            switch byte {
            case UInt8(ascii: "{"): return object()
            case UInt8(ascii: "["): return array()
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
            default: return nil
            }
        }

        private mutating func literal(_ word: StaticString, _ value: Value) -> Value? {
            let count = word.utf8CodeUnitCount
            guard bytes.count - position >= count else { return nil }
            for index in 0..<count where bytes[position + index] != word.utf8Start[index] { return nil }
            position += count
            return value
        }

        private mutating func object() -> Value? {
            guard depth < Self.maximumDepth else { return nil }
            depth += 1
            defer { depth -= 1 }
            position += 1
            var fields: [String: Value] = [:]
            skipSpace()
            if take(UInt8(ascii: "}")) { return .object(fields) }
            while true {
                skipSpace()
                guard next == UInt8(ascii: "\""), let key = string() else { return nil }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                guard let value = value(), fields.updateValue(value, forKey: key) == nil else { return nil }
                skipSpace()
                if take(UInt8(ascii: "}")) { return .object(fields) }
                guard take(UInt8(ascii: ",")) else { return nil }
            }
        }

        private mutating func array() -> Value? {
            guard depth < Self.maximumDepth else { return nil }
            depth += 1
            defer { depth -= 1 }
            position += 1
            var items: [Value] = []
            skipSpace()
            if take(UInt8(ascii: "]")) { return .array(items) }
            while true {
                skipSpace()
                guard let value = value() else { return nil }
                items.append(value)
                skipSpace()
                if take(UInt8(ascii: "]")) { return .array(items) }
                guard take(UInt8(ascii: ",")) else { return nil }
            }
        }

        private mutating func number() -> Value? {
            let start = position
            _ = take(UInt8(ascii: "-"))
            if take(UInt8(ascii: "0")) {
                // No leading zeros.
            } else if let byte = next, byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9") {
                skipDigits()
            } else {
                return nil
            }
            if take(UInt8(ascii: ".")) {
                guard skipDigits() else { return nil }
            }
            // JSONSerialization refuses a number it cannot represent (1e400), wherever it is: numbers with an
            // exponent, or too long to be plainly an Int64 or a Decimal, are left to it.
            guard next != UInt8(ascii: "e"), next != UInt8(ascii: "E"), position - start <= 24 else { return nil }
            return .number(String(decoding: bytes[start..<position], as: UTF8.self))
        }

        /// Skips a run of digits; false when there was none.
        @discardableResult
        private mutating func skipDigits() -> Bool {
            let start = position
            while let byte = next, byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { position += 1 }
            return position > start
        }

        /// A string from its opening quote; unescaped control characters, lone surrogates and NUL are refused.
        private mutating func string() -> String? {
            position += 1
            var text = ""
            var run = position
            while let byte = next {
                switch byte {
                case UInt8(ascii: "\""):
                    text += String(decoding: bytes[run..<position], as: UTF8.self)
                    position += 1
                    return text
                case UInt8(ascii: "\\"):
                    text += String(decoding: bytes[run..<position], as: UTF8.self)
                    position += 1
                    guard let scalar = escape() else { return nil }
                    text.unicodeScalars.append(scalar)
                    run = position
                case 0..<0x20:
                    return nil
                default:
                    position += 1
                }
            }
            return nil
        }

        /// The character of an escape, after its backslash.
        private mutating func escape() -> Unicode.Scalar? {
            guard let byte = next else { return nil }
            position += 1
            switch byte {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{8}"
            case UInt8(ascii: "f"): return "\u{C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                guard let high = hex4() else { return nil }
                if (0xD800..<0xDC00).contains(high) {
                    guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(), (0xDC00..<0xE000).contains(low) else {
                        return nil
                    }
                    return Unicode.Scalar(0x10000 + (high - 0xD800) << 10 + (low - 0xDC00))
                }
                guard high != 0 else { return nil }
                return Unicode.Scalar(high)  // nil for a lone low surrogate
            default: return nil
            }
        }

        private mutating func hex4() -> UInt32? {
            guard bytes.count - position >= 4 else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
                position += 1
            }
            return value
        }
    }
}
