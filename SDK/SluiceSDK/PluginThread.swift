import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A background thread owned by a plugin instance, stopped and joined before the instance is gone.
///
/// The host may free what an instance received at `create` (its host API, and with it `PluginContext.log`) as
/// soon as `destroy` returns, so a plugin thread must end inside `destroy`. Hold the thread in a stored property of
/// the plugin: when the plugin is deinitialised the thread's `deinit` signals it and waits for it to return.
///
/// The body must not capture the plugin object itself (a thread that holds the plugin keeps it alive, so it is
/// never deinitialised and the thread never stopped): put what the thread works on in a separate object and
/// capture that.
///
/// ```swift
/// final class Receiver: Sendable { func run(_ stop: StopSignal) { while !stop.isStopping { ... } } }
/// let receiver = Receiver(...)
/// thread = try PluginThread { stop in receiver.run(stop) }
/// ```
public final class PluginThread: Sendable {
    public let stop: StopSignal
    private let handle: Mutex<pthread_t?>

    /// Starts `body` on a new thread; it should return soon after `stop.isStopping` turns true.
    public init(_ body: @escaping @Sendable (StopSignal) -> Void) throws {
        let signal = try StopSignal()
        stop = signal
        let start = Unmanaged.passRetained(ThreadStart(body: body, signal: signal)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
            start.body(start.signal)
            return nil
        }, start)
        guard status == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(start).release()
            throw PluginError("cannot start a thread: \(String(cString: strerror(status)))")
        }
        handle = Mutex(thread)
    }

    /// Signals the thread to stop and waits until it has returned. Idempotent.
    public func stopAndJoin() {
        stop.signal()
        if let thread = handle.withLock({ value -> pthread_t? in
            defer { value = nil }
            return value
        }) {
            pthread_join(thread, nil)
        }
    }

    deinit { stopAndJoin() }
}

private final class ThreadStart {
    let body: @Sendable (StopSignal) -> Void
    let signal: StopSignal
    init(body: @escaping @Sendable (StopSignal) -> Void, signal: StopSignal) {
        self.body = body
        self.signal = signal
    }
}

/// A stop request a thread can test, sleep on, or `poll` beside its own file descriptors.
public final class StopSignal: Sendable {
    private let stopping = Atomic<Bool>(false)
    /// Becomes readable once the stop is signalled: add it to a `poll` set to wake a blocked thread.
    public let fileDescriptor: Int32
    private let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw PluginError("cannot create a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        fileDescriptor = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        close(fileDescriptor)
        close(writeEnd)
    }

    /// Whether a stop was requested.
    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    func signal() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Sleeps up to `milliseconds`, waking early on a stop. Returns true when stopping.
    public func sleep(milliseconds: Int) -> Bool {
        var remaining = milliseconds
        while !isStopping && remaining > 0 {
            var fd = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
            let slice = min(remaining, 1000)
            if poll(&fd, 1, Int32(slice)) > 0 { break }
            remaining -= slice
        }
        return isStopping
    }
}
