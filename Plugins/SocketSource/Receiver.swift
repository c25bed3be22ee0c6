import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The connection side of the socket source, run by its background thread.
final class Receiver: Sendable {
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
            // Back-pressure: while too many lines, or too many bytes, wait for a commit, do not read: the kernel's
            // buffers fill and TCP slows the sender. Nothing is dropped.
            if state.withLock({ $0.lines.pendingCount >= configuration.max_buffered_records || $0.lines.pendingBytes >= configuration.max_buffered_bytes }) {
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

/// Milliseconds on the monotonic clock (for reconnect back-off and sync intervals).
private func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
