import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `socket`: Spark's `socketTextStream`. A TCP client that reads newline-delimited UTF-8 lines, one record each.
///
/// One partition; offsets number the lines received since the instance started. A background thread connects,
/// reads and reconnects with exponential back-off. Lines wait in memory until the engine commits them; when
/// `max_buffered_records` are waiting the thread stops reading, so TCP flow control slows the sender. A partial
/// line left when the connection closes is kept as a line, as Spark does. (The write-ahead log that makes this
/// source replayable across restarts is the checkpoints issue's.)
public final class SocketSource: SourcePlugin {
    public struct Configuration: Decodable, Sendable {
        var host: String
        var port: Int
        var reconnect_initial_ms: Int
        var reconnect_max_ms: Int
        var max_buffered_records: Int
        var max_line_bytes: Int
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
        ],
        concurrent: true
    )

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
        let receiver = Receiver(configuration: configuration, context: context)
        self.receiver = receiver
        // The thread holds the receiver, never this object: destroying the instance stops and joins the thread.
        thread = try PluginThread { stop in receiver.run(stop) }
    }

    // MARK: SourcePlugin

    public func partitionCount() throws -> Int { 1 }

    public func available(partition: Int) throws -> Range<UInt64> { receiver.lines.withLock { $0.range } }

    public func read(partition: Int, offsets: Range<UInt64>, into output: inout BatchBuilder) throws {
        try receiver.lines.withLock { buffer in
            guard offsets.lowerBound >= buffer.range.lowerBound, offsets.upperBound <= buffer.range.upperBound else {
                throw PluginError(
                    "lines \(offsets.lowerBound)..<\(offsets.upperBound) are not held (held: "
                        + "\(buffer.range.lowerBound)..<\(buffer.range.upperBound))"
                )
            }
            buffer.forEach(in: offsets) { output.append($0) }
        }
    }

    public func commit(partition: Int, upTo offset: UInt64) throws {
        receiver.lines.withLock { $0.forget(below: offset) }
    }
}

/// The connection side of the socket source, run by its background thread.
private final class Receiver: Sendable {
    let configuration: SocketSource.Configuration
    let context: PluginContext
    /// Lines received and not yet forgotten.
    let lines = Mutex(LineBuffer())

    init(configuration: SocketSource.Configuration, context: PluginContext) {
        self.configuration = configuration
        self.context = context
    }


    /// The background thread: connect, read until the connection ends, wait, reconnect.
    func run(_ stop: StopSignal) {
        var delay = configuration.reconnect_initial_ms
        var lastFailure = ""
        while !stop.isStopping {
            switch connect() {
            case .success(let fd):
                context.log(.info, "connected to \(configuration.host):\(configuration.port)")
                delay = configuration.reconnect_initial_ms
                lastFailure = ""
                let reason = readLines(from: fd, stop)
                close(fd)
                if stop.isStopping { return }
                context.log(.info, "connection to \(configuration.host):\(configuration.port) ended: \(reason)")
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

    /// Reads lines until the peer closes, an error, or stop. Returns why it ended.
    private func readLines(from fd: Int32, _ stop: StopSignal) -> String {
        let size = 256 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var partial: [UInt8] = []
        var cutWarned = false
        var skippingRest = false
        defer {
            // A last line without a newline is still a line.
            if !partial.isEmpty { lines.withLock { buffer in partial.withUnsafeBytes { buffer.append($0) } } }
        }
        while !stop.isStopping {
            // Back-pressure: while too many lines wait for a commit, do not read.
            if lines.withLock({ $0.count }) >= configuration.max_buffered_records {
                if stop.sleep(milliseconds: 20) { return "stopping" }
                continue
            }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stop.fileDescriptor, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            if fds[1].revents != 0 { return "stopping" }
            let n = recv(fd, buffer, size, 0)
            if n == 0 { return "closed by the peer" }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return String(cString: strerror(errno))
            }
            let bytes = UnsafeRawBufferPointer(start: buffer, count: n)
            lines.withLock { lineBuffer in
                var start = 0
                while start < n {
                    guard let newline = bytes[start...].firstIndex(of: 10) else {
                        if !skippingRest { partial.append(contentsOf: bytes[start...]) }
                        break
                    }
                    let line = UnsafeRawBufferPointer(rebasing: bytes[start..<newline])
                    start = newline + 1
                    if skippingRest {
                        // The rest of a line already cut and emitted.
                        skippingRest = false
                        continue
                    }
                    if partial.isEmpty && line.count <= configuration.max_line_bytes && line.last != 13 {
                        lineBuffer.append(line)  // the common case: no copy through `partial`
                    } else {
                        partial.append(contentsOf: line)
                        emit(partial, into: &lineBuffer, cutWarned: &cutWarned)
                        partial.removeAll(keepingCapacity: true)
                    }
                }
                if partial.count > configuration.max_line_bytes {
                    emit(partial, into: &lineBuffer, cutWarned: &cutWarned)
                    partial.removeAll(keepingCapacity: true)
                    skippingRest = true
                }
            }
        }
        return "stopping"
    }

    /// Appends a line assembled across reads: strips '\r', cuts it to `max_line_bytes`.
    private func emit(_ line: [UInt8], into buffer: inout LineBuffer, cutWarned: inout Bool) {
        var line = line[...]
        if line.last == 13 { line = line.dropLast() }
        if line.count > configuration.max_line_bytes {
            if !cutWarned {
                context.log(.warning, "a line of \(line.count) bytes was cut to max_line_bytes (\(configuration.max_line_bytes))")
                cutWarned = true
            }
            line = line.prefix(configuration.max_line_bytes)
        }
        line.withUnsafeBytes { buffer.append($0) }
    }

}

@c(sluice_plugin_entry_v1)
public func sluicePluginEntry(_ hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
    PluginExport.descriptor(for: SocketSource.self, hostABI: hostABI)
}
