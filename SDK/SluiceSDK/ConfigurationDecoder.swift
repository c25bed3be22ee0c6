#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A JSON value, for merging defaults into a configuration before it is decoded.
enum JSONValue: Codable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// Decodes a plugin's configuration from JSON: fills in defaults, refuses unknown keys and missing required keys,
/// and turns decoding errors into messages that name the key.
public enum ConfigurationDecoder {
    /// Decodes `json` (UTF-8 bytes of a JSON object) as `T`, using `options` for defaults and validation.
    public static func decode<T: Decodable>(_ type: T.Type, from json: [UInt8], options: [ConfigOption]) throws -> T {
        let data = Data(json.isEmpty ? Array("{}".utf8) : json)
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw PluginError("configuration is not valid JSON")
        }
        guard case .object(var fields) = root else { throw PluginError("configuration must be a JSON object") }
        if !options.isEmpty || T.self == EmptyConfiguration.self {
            let known = options.map(\.name)
            for key in fields.keys.sorted() where !known.contains(key) {
                throw PluginError("unknown configuration key '\(key)'" + didYouMean(key, among: known))
            }
        }
        for option in options where fields[option.name] == nil {
            if let value = option.defaultJSON {
                fields[option.name] = try JSONDecoder().decode(JSONValue.self, from: Data(value.utf8))
            } else if option.required {
                throw PluginError("missing required configuration key '\(option.name)'")
            }
        }
        for option in options where !option.allowed.isEmpty {
            if case .string(let value)? = fields[option.name], !option.allowed.contains(value) {
                throw PluginError(
                    "configuration key '\(option.name)': '\(value)' is not one of "
                        + option.allowed.map { "'\($0)'" }.joined(separator: ", ")
                )
            }
        }
        let merged = try JSONEncoder().encode(JSONValue.object(fields))
        do {
            return try JSONDecoder().decode(T.self, from: merged)
        } catch let error as DecodingError {
            throw PluginError(describe(error))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "configuration key '\(path(context.codingPath))': expected \(describeType(type))"
        case .valueNotFound(let type, let context):
            return "configuration key '\(path(context.codingPath))': expected \(describeType(type)), found null"
        case .keyNotFound(let key, let context):
            return "missing required configuration key '\(path(context.codingPath + [key]))'"
        case .dataCorrupted(let context):
            return "configuration key '\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default:
            return "configuration could not be decoded: \(error)"
        }
    }

    static func describeType(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type, is UInt32.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is [String].Type: return "a list of strings"
        default: return "a value of type \(type)"
        }
    }
}

/// " (did you mean 'x'?)" when a candidate is within a small edit distance of `word`, else "".
public func didYouMean(_ word: String, among candidates: [String]) -> String {
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(word.lowercased(), candidate.lowercased())
        if distance <= max(2, candidate.count / 3), distance < (best?.1 ?? Int.max) { best = (candidate, distance) }
    }
    return best.map { " (did you mean '\($0.0)'?)" } ?? ""
}

/// Levenshtein distance between two strings, by characters.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
