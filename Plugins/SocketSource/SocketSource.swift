import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `socket`: Spark's `socketTextStream`. A TCP client that reads newline-delimited UTF-8 lines, one record each.
///
/// One partition. A background thread connects, reads and reconnects with exponential back-off. Lines wait in memory
/// until the engine commits them; when `max_buffered_records` lines or `max_buffered_bytes` bytes are waiting the
/// thread stops reading, so TCP flow control slows the sender. A partial line left when the connection closes is kept as a line, as Spark does.
///
/// In a checkpointed pipeline (the host gives the instance a state directory) every line goes to a write-ahead log
/// before it may enter a batch, and offsets number the lines in that log: after a crash the source offers the lines
/// after the last commit again, so a line that reached the log is neither lost nor counted twice. Without a state
/// directory offsets number the lines received since the instance started.
public final class SocketSource: SourcePlugin {
    public struct Configuration: Decodable, Sendable {
        var host: String
        var port: Int
        var reconnect_initial_ms: Int
        var reconnect_max_ms: Int
        var max_buffered_records: Int
        var max_buffered_bytes: Int
        var max_line_bytes: Int
        var write_ahead_log: Bool
        var wal_sync_ms: Int
        var wal_segment_lines: Int
    }

    public static let info = PluginInfo(
        name: "socket",
        version: "1.0.0",
        description: "Reads newline-delimited text from a TCP server, reconnecting (Spark's socketTextStream)",
        options: [
            .integer("port", description: "The TCP port to connect to", required: true),
            .string("host", description: "The host to connect to", default: "127.0.0.1"),
            .integer("reconnect_initial_ms", description: "First delay before reconnecting; doubles each time", default: 100),
            .integer("reconnect_max_ms", description: "Longest delay between reconnects", default: 5000),
            .integer(
                "max_buffered_records",
                description: "Stop reading (TCP back-pressure) while this many received lines are uncommitted",
                default: 1_000_000
            ),
            .integer(
                "max_buffered_bytes",
                description: "Stop reading (TCP back-pressure) while the uncommitted lines take this many bytes",
                default: 64 << 20
            ),
            .integer("max_line_bytes", description: "Longer lines are cut to this length (with a warning)", default: 1 << 20),
            .boolean(
                "write_ahead_log",
                description: "In a checkpointed pipeline, log every line to disk before it enters a batch (replay after a crash)",
                default: true
            ),
            .integer(
                "wal_sync_ms",
                description: "0: fsync the write-ahead log before each batch is planned; N: fsync every N ms (batches take synced lines)",
                default: 0
            ),
            .integer("wal_segment_lines", description: "Lines per write-ahead log file; committed files are deleted", default: 100_000),
        ],
        concurrent: true
    )

    private let configuration: Configuration
    /// Without a write-ahead log in a checkpointed pipeline: where the last committed offset is kept.
    private var committedOffsetFile: CommittedOffsetFile?
    private let receiver: Receiver
    private let thread: PluginThread

    public init(configuration: Configuration, context: PluginContext) throws {
        guard (1...65535).contains(configuration.port) else {
            throw PluginError("configuration key 'port': \(configuration.port) is not a TCP port (1-65535)")
        }
        guard configuration.reconnect_initial_ms > 0, configuration.reconnect_max_ms >= configuration.reconnect_initial_ms
        else {
            throw PluginError("configuration keys 'reconnect_initial_ms'/'reconnect_max_ms': need 0 < initial <= max")
        }
        guard configuration.max_buffered_records > 0, configuration.max_buffered_bytes > 0, configuration.max_line_bytes > 0 else {
            throw PluginError("configuration keys 'max_buffered_records', 'max_buffered_bytes' and 'max_line_bytes' must be positive")
        }
        guard configuration.wal_sync_ms >= 0 else {
            throw PluginError("configuration key 'wal_sync_ms': \(configuration.wal_sync_ms) is negative (0 syncs before each batch)")
        }
        guard configuration.wal_segment_lines > 0 else {
            throw PluginError("configuration key 'wal_segment_lines' must be positive")
        }
        var buffer = LineBuffer()
        var wal: WriteAheadLog?
        if let directory = context.stateDirectory {
            if configuration.write_ahead_log {
                wal = try WriteAheadLog(directory: directory, segmentLines: configuration.wal_segment_lines, recoveringInto: &buffer)
                if buffer.count > 0 {
                    context.log(.info, "write-ahead log: \(buffer.count) lines from offset \(buffer.range.lowerBound) recovered from \(directory)")
                }
            } else {
                // No log: lines held in memory at a crash are lost, but numbering continues after the last commit so
                // that the committed position stays meaningful (at most once).
                let file = try CommittedOffsetFile(directory: directory)
                committedOffsetFile = file
                buffer = LineBuffer(firstOffset: try file.read())
            }
        }
        let receiver = Receiver(configuration: configuration, context: context, state: Received(lines: buffer, wal: wal))
        self.configuration = configuration
        self.receiver = receiver
        // The thread holds the receiver, never this object: destroying the instance stops and joins the thread.
        thread = try PluginThread { stop in receiver.run(stop) }
    }

    // MARK: SourcePlugin

    public func partitionCount() throws -> Int { 1 }

    public func available(partition: Int) throws -> Range<UInt64> {
        let syncNow = configuration.wal_sync_ms == 0
        return try receiver.state.withLock { state in
            if let failure = state.failure { throw PluginError(failure) }
            if syncNow { try state.wal?.sync() }
            return state.lines.range.lowerBound..<state.offered
        }
    }

    public func read(partition: Int, offsets: Range<UInt64>, into output: inout BatchBuilder) throws {
        try receiver.state.withLock { state in
            let held = state.lines.range.lowerBound..<state.offered
            guard offsets.lowerBound >= held.lowerBound, offsets.upperBound <= held.upperBound else {
                throw PluginError("lines \(offsets.lowerBound)..<\(offsets.upperBound) are not held (held: \(held.lowerBound)..<\(held.upperBound))")
            }
            state.lines.forEach(in: offsets) { output.append($0) }
        }
    }

    public func commit(partition: Int, upTo offset: UInt64) throws {
        receiver.state.withLock { state in
            state.lines.forget(below: offset)
            state.wal?.trim(below: offset)
        }
        try committedOffsetFile?.write(offset)
    }
}
