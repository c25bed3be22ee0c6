import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `socket`: Spark's `socketTextStream`. A TCP client that reads newline-delimited UTF-8 lines, one record each.
///
/// One partition. A background thread connects, reads and reconnects with exponential back-off. Lines wait in memory
/// until the engine commits them; when `max_buffered_records` are waiting the thread stops reading, so TCP flow
/// control slows the sender. A partial line left when the connection closes is kept as a line, as Spark does.
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
        guard configuration.max_buffered_records > 0, configuration.max_line_bytes > 0 else {
            throw PluginError("configuration keys 'max_buffered_records' and 'max_line_bytes' must be positive")
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

/// What the receiving thread shares with the engine's calls.
private struct Received: Sendable {
    /// Lines received and not yet forgotten.
    var lines: LineBuffer
    /// The write-ahead log, in a checkpointed pipeline.
    var wal: WriteAheadLog?
    /// Why the log stopped working, reported by the next `available`.
    var failure: String?

    /// The end of what a batch may take: every line when there is no log, the synced ones when there is.
    var offered: UInt64 { wal?.durableEnd ?? lines.range.upperBound }

    init(lines: LineBuffer, wal: WriteAheadLog?) {
        self.lines = lines
        self.wal = wal
    }

    /// Takes a received line: in memory, and staged for the log.
    mutating func add(_ line: UnsafeRawBufferPointer) {
        lines.append(line)
        wal?.stage(line)
    }

    /// Writes the staged lines to the log, and returns why when that fails. A failed write keeps them staged (and in
    /// memory, but not offered: a batch takes only logged lines) for the next attempt; a failed fsync also stops the
    /// pipeline at its next batch.
    mutating func flush() -> String? {
        guard let wal else { return nil }
        do throws(WriteAheadLog.FlushError) {
            try wal.flush()
            return nil
        } catch {
            if !error.retryable && failure == nil { failure = error.description }
            return error.description
        }
    }

    /// Makes the logged lines durable; a failure stops the pipeline at its next batch.
    mutating func sync() {
        guard let wal, failure == nil else { return }
        do { try wal.sync() } catch { failure = "\(error)" }
    }

    /// Whether lines were written to the log but not synced.
    var unsynced: Bool { wal.map { $0.durableEnd < $0.nextOffset } ?? false }
}

/// The connection side of the socket source, run by its background thread.
private final class Receiver: Sendable {
    let configuration: SocketSource.Configuration
    let context: PluginContext
    let state: Mutex<Received>

    init(configuration: SocketSource.Configuration, context: PluginContext, state: Received) {
        self.configuration = configuration
        self.context = context
        self.state = Mutex(state)
    }


    /// The background thread: connect, read until the connection ends, wait, reconnect. The delay doubles from
    /// `reconnect_initial_ms` up to `reconnect_max_ms`, and starts over only after a connection that stayed up for
    /// `reconnect_max_ms`: a server that accepts connections and drops them at once sees ever fewer attempts.
    func run(_ stop: StopSignal) {
        var delay = configuration.reconnect_initial_ms
        var lastFailure = ""
        while !stop.isStopping {
            switch connect() {
            case .success(let fd):
                context.log(.info, "connected to \(configuration.host):\(configuration.port)")
                lastFailure = ""
                let connectedAt = monotonicMilliseconds()
                let reason = readLines(from: fd, stop)
                close(fd)
                if stop.isStopping { return }
                if monotonicMilliseconds() - connectedAt >= Int64(configuration.reconnect_max_ms) {
                    delay = configuration.reconnect_initial_ms
                }
                context.log(.info, "connection to \(configuration.host):\(configuration.port) ended: \(reason); reconnecting in \(delay) ms")
            case .failure(let message):
                // Log a failure once, not on every retry.
                if message != lastFailure {
                    context.log(.info, "cannot connect to \(configuration.host):\(configuration.port): \(message); retrying")
                    lastFailure = message
                }
            }
            if stop.sleep(milliseconds: delay) { return }
            delay = min(delay * 2, configuration.reconnect_max_ms)
        }
    }

    private enum Connection {
        case success(Int32)
        case failure(String)
    }

    private func connect() -> Connection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(configuration.host, String(configuration.port), &hints, &result)
        guard status == 0, let first = result else {
            return .failure("cannot resolve '\(configuration.host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        var message = "no address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let address = candidate {
            let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return .success(fd) }
                message = String(cString: strerror(errno))
                close(fd)
            }
            candidate = address.pointee.ai_next
        }
        return .failure(message)
    }

    /// Reads lines until the peer closes, an error, or stop; returns why it ended.
    private func readLines(from fd: Int32, _ stop: StopSignal) -> String {
        let size = 256 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var splitter = LineSplitter(maxLineBytes: configuration.max_line_bytes)
        var cutWarned = false
        let cut = { [context, configuration] (length: Int) in
            // Once per connection, with the line's real length (known when its end arrived).
            if !cutWarned {
                context.log(.warning, "a line of \(length) bytes was cut to max_line_bytes (\(configuration.max_line_bytes)); further long lines on this connection are cut without a warning")
                cutWarned = true
            }
        }
        var outage: String?
        let syncEvery = Int64(configuration.wal_sync_ms)
        var nextSync = monotonicMilliseconds() + syncEvery
        defer {
            // A last line without a newline is still a line, and must reach the log like any other.
            state.withLock { state in splitter.finish(line: { state.add($0) }, cut: cut) }
            _ = writeStaged(stop, outage: &outage)
            if syncEvery > 0 { state.withLock { $0.sync() } }
        }
        while !stop.isStopping {
            if syncEvery > 0 && monotonicMilliseconds() >= nextSync {
                state.withLock { $0.sync() }
                nextSync = monotonicMilliseconds() + syncEvery
            }
            // Back-pressure: while too many lines wait for a commit, do not read.
            if state.withLock({ $0.lines.count }) >= configuration.max_buffered_records {
                if stop.sleep(milliseconds: 20) { return "stopping" }
                continue
            }
            // With periodic syncs, wake up for the next one while lines wait unsynced.
            let timeout = syncEvery > 0 && state.withLock({ $0.unsynced }) ? Int32(max(0, nextSync - monotonicMilliseconds())) : -1
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stop.fileDescriptor, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            if ready == 0 { continue }
            if fds[1].revents != 0 { return "stopping" }
            let n = recv(fd, buffer, size, 0)
            if n == 0 { return "closed by the peer" }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return String(cString: strerror(errno))
            }
            state.withLock { state in
                splitter.split(UnsafeRawBufferPointer(start: buffer, count: n), line: { state.add($0) }, cut: cut)
            }
            // The next read waits until the log took these lines: a full disk holds the sender through TCP.
            if !writeStaged(stop, outage: &outage) { return "stopping" }
        }
        return "stopping"
    }

    /// Writes the lines staged for the write-ahead log. While the log cannot take them (a full disk) this waits,
    /// keeping them, and tries again every 50 ms, doubling up to 1 s; the warning is logged once per outage, not per
    /// attempt. The connection stays open meanwhile: nothing is read, so the kernel's buffer fills and TCP holds the
    /// sender. Returns false when the source is stopping (staged lines never reached the log and are not offered).
    private func writeStaged(_ stop: StopSignal, outage: inout String?) -> Bool {
        var retry = 50
        while true {
            guard let failure = state.withLock({ $0.flush() }) else {
                if outage != nil {
                    context.log(.info, "the write-ahead log takes lines again; reading from \(configuration.host):\(configuration.port) resumes")
                    outage = nil
                }
                return true
            }
            if outage == nil {
                context.log(.warning, "\(failure); reading from \(configuration.host):\(configuration.port) stops (TCP holds the sender) until the log can be written, tried every second at most")
                outage = failure
            }
            if stop.sleep(milliseconds: retry) { return false }
            retry = min(retry * 2, 1000)
        }
    }
}

private func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
