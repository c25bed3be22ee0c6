import Logging
import SluiceSDK

/// The JSON form of a record: one object on one line — `timestamp` (ISO-8601, UTC, milliseconds), `level`,
/// `pipeline`, `component`, `message`, then the other metadata (`instance`, `plugin`, batch figures) by name. A
/// metadata key that would clash with one of those fields is written as `metadata.KEY`.
enum JSONLogLine {
    static let fields: Set<String> = ["timestamp", "level", "pipeline", "component", "message"]

    static func render(_ record: LogRecord) -> String {
        var out = "{\"timestamp\":\"\(LogTimestamp.format(record.timestamp))\",\"level\":\"\(record.level)\""
        if let pipeline = record.metadata["pipeline"] {
            out += ",\"pipeline\":" + value(pipeline)
        }
        out += ",\"component\":" + string(record.component) + ",\"message\":" + string(record.message)
        for (key, item) in record.metadata.sorted(by: { $0.key < $1.key }) where key != "pipeline" {
            out += "," + string(fields.contains(key) ? "metadata.\(key)" : key) + ":" + value(item)
        }
        return out + "}"
    }

    /// Numbers stay numbers (batch figures); everything else is a string, a list or an object.
    static func value(_ item: Logger.MetadataValue) -> String {
        switch item {
        case .string(let text): return string(text)
        case .stringConvertible(let convertible):
            if convertible is any BinaryInteger { return convertible.description }
            if let number = convertible as? Double, number.isFinite { return convertible.description }
            return string(convertible.description)
        case .array(let items): return "[" + items.map(value).joined(separator: ",") + "]"
        case .dictionary(let entries):
            return "{" + entries.sorted(by: { $0.key < $1.key }).map { string($0.key) + ":" + value($0.value) }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and every control character escaped (the SDK's `jsonQuoted`), so
    /// a message with newlines stays on its line.
    static func string(_ text: String) -> String { jsonQuoted(text) }
}
