import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// `console`: Spark's `print()`. For each batch, a header with the batch time and the first `limit` records.
///
/// Records are collected between `begin` and `commit` (all of them when sorting, otherwise only the first `limit`)
/// and printed with one write at `commit`, so a batch that is retried prints once.
public final class ConsoleSink: SinkPlugin {
    public struct Configuration: Decodable, Sendable {
        var limit: Int
        var sort: String
        var header: Bool
    }

    public static let info = PluginInfo(
        name: "console",
        version: "1.0.0",
        description: "Prints each batch's time and first records to standard output (Spark's print())",
        options: [
            .integer("limit", description: "Records shown per batch; 0 shows all", default: 10),
            .string(
                "sort",
                description: "Order of the records shown: as produced, by key, or by value descending",
                default: "none",
                allowed: ["none", "key", "value-desc"]
            ),
            .boolean("header", description: "Print the '-----' / 'Time: ... ms' header of each batch", default: true),
        ]
    )

    private struct Row {
        var key: [UInt8]?
        var text: [UInt8]
        var bytesValue: [UInt8]
        var intValue: Int64?
    }

    private let limit: Int
    private let sort: String
    private let header: Bool
    /// The batch being collected and its rows. Sinks are called from one thread: no lock needed.
    private var rows: [Row] = []
    private var total = 0

    public init(configuration: Configuration, context: PluginContext) throws {
        guard configuration.limit >= 0 else { throw PluginError("configuration key 'limit': must be 0 or more") }
        limit = configuration.limit
        sort = configuration.sort
        header = configuration.header
    }

    public func begin(_ batch: BatchInfo) throws {
        rows.removeAll(keepingCapacity: true)
        total = 0
    }

    public func write(_ chunk: BatchView) throws {
        total += chunk.count
        let keepAll = limit == 0 || sort != "none"
        for i in 0..<chunk.count {
            if !keepAll && rows.count >= limit { return }
            let key = chunk.key(at: i).map { Array($0) }
            let value: [UInt8]
            var int: Int64?
            switch chunk.valueType {
            case .bytes: value = Array(chunk.value(at: i))
            case .int64:
                int = chunk.int64Value(at: i)
                value = Array(String(int!).utf8)
            }
            var text: [UInt8] = []
            if let key {
                text.append(UInt8(ascii: "("))
                text += key
                text.append(UInt8(ascii: ","))
                text += value
                text.append(UInt8(ascii: ")"))
            } else {
                text = value
            }
            rows.append(Row(key: key, text: text, bytesValue: value, intValue: int))
        }
    }

    public func commit(_ batch: BatchInfo) throws {
        switch sort {
        case "key":
            rows.sort { ($0.key ?? $0.bytesValue).lexicographicallyPrecedes($1.key ?? $1.bytesValue) }
        case "value-desc":
            rows.sort { a, b in
                if let x = a.intValue, let y = b.intValue, x != y { return x > y }
                if a.intValue == nil, b.intValue == nil, a.bytesValue != b.bytesValue {
                    return b.bytesValue.lexicographicallyPrecedes(a.bytesValue)
                }
                return (a.key ?? a.text).lexicographicallyPrecedes(b.key ?? b.text)
            }
        default:
            break
        }
        var out: [UInt8] = []
        if header {
            let rule = Array("-------------------------------------------\n".utf8)
            out += rule
            out += Array("Time: \(batch.timeMilliseconds) ms\n".utf8)
            out += rule
        }
        let shown = limit == 0 ? rows.count : min(limit, rows.count)
        for row in rows.prefix(shown) {
            out += row.text
            out.append(10)
        }
        if total > shown { out += Array("...\n".utf8) }
        out.append(10)
        rows.removeAll(keepingCapacity: true)
        try writeAll(out)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE { throw SinkError.fatal("standard output is closed (broken pipe)") }
                    throw SinkError.retry("cannot write to standard output: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }
}
