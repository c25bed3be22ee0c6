import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One pipeline's process: `sluice run` started with `posix_spawn`, its standard output and error and its event
/// stream (descriptor 3) read line by line on threads of their own, and its end waited for on another.
///
/// Blocking reads and `waitpid` stay off Swift's cooperative pool, which has a thread per core. The child gets a
/// process group of its own, so a Ctrl-C at the server's terminal reaches the server only, which then stops each
/// pipeline itself; signal dispositions and the signal mask are reset to their defaults, since the server's
/// (SIGPIPE ignored, signals trapped) would otherwise be inherited through exec.
final class ChildProcess: Sendable {
    /// How a child ended, decoded from `waitpid`'s status.
    enum Exit: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signalled(let signal): "killed by signal \(signal)\(Self.signalName(signal).map { " (\($0))" } ?? "")"
            }
        }

        static func signalName(_ signal: Int32) -> String? {
            switch signal {
            case SIGKILL: "SIGKILL"
            case SIGTERM: "SIGTERM"
            case SIGINT: "SIGINT"
            case SIGSEGV: "SIGSEGV"
            case SIGABRT: "SIGABRT"
            case SIGBUS: "SIGBUS"
            case SIGILL: "SIGILL"
            case SIGTRAP: "SIGTRAP"
            default: nil
            }
        }
    }

    /// Where each of the child's lines goes: standard output, standard error, the event stream.
    enum Stream: Sendable { case output, error, events }

    let pid: pid_t
    /// Set once the child is reaped: from then on its pid may belong to another process, so it is not signalled.
    private let reaped = Mutex(false)

    /// Starts the child. `onLine` is called on the reading threads, in order per stream; `onExit` once, after the
    /// child ended and every stream was read to its end (so the last log lines are in before the exit is handled).
    init(
        executable: String, arguments: [String], environment: [String: String],
        onLine: @escaping @Sendable (Stream, String) -> Void, onExit: @escaping @Sendable (Exit) -> Void
    ) throws {
        var output: [Int32] = [-1, -1]
        var error: [Int32] = [-1, -1]
        var events: [Int32] = [-1, -1]
        // Close-on-exec, so that no other child inherits these ends; dup2 in the child clears the flag on the copies.
        // (Glibc's module does not export pipe2; the server starts children from one place at a time.)
        guard Self.makePipe(&output) else { throw Self.failure("pipe") }
        guard Self.makePipe(&error) else {
            for fd in output { close(fd) }
            throw Self.failure("pipe")
        }
        guard Self.makePipe(&events) else {
            for fd in output + error { close(fd) }
            throw Self.failure("pipe")
        }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, devNull, 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, error[1], 2)
        posix_spawn_file_actions_adddup2(&actions, events[1], 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv = [executable] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = Self.withCStrings(argv) { argv in
            Self.withCStrings(envp) { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            }
        }
        // The child has its copies; the server keeps only the reading ends.
        for fd in [output[1], error[1], events[1], devNull] { close(fd) }
        guard status == 0 else {
            for fd in [output[0], error[0], events[0]] { close(fd) }
            throw Self.failure("posix_spawn \(executable)", code: status)
        }
        self.pid = pid
        let childPID = pid

        let readers = DispatchGroup()
        for (fd, stream) in [(output[0], Stream.output), (error[0], .error), (events[0], .events)] {
            readers.enter()
            let thread = Thread {
                LineReader.read(fd) { onLine(stream, $0) }
                close(fd)
                readers.leave()
            }
            thread.name = "sluice-serve child \(childPID) reader"
            thread.start()
        }
        let waiter = Thread { [self] in
            // Wait without reaping, then reap under the lock `signal` takes: a signal never reaches a reused pid.
            var info = siginfo_t()
            while waitid(P_PID, id_t(childPID), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            var status: Int32 = 0
            self.reaped.withLock { reaped in
                while waitpid(childPID, &status, 0) < 0 && errno == EINTR {}
                reaped = true
            }
            // A grandchild that kept a pipe open must not hold the exit back for ever.
            _ = readers.wait(timeout: .now() + 5)
            let signal = status & 0x7f
            onExit(signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal))
        }
        waiter.name = "sluice-serve child \(childPID) waiter"
        waiter.start()
    }

    /// Sends a signal to the child, unless it was reaped already.
    func signal(_ signal: Int32) {
        reaped.withLock { reaped in
            if !reaped { _ = kill(pid, signal) }
        }
    }

    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    private static func failure(_ what: String, code: Int32 = errno) -> any Error {
        NSError(domain: NSPOSIXErrorDomain, code: Int(code), userInfo: [
            NSLocalizedDescriptionKey: "\(what): \(String(cString: strerror(code)))"
        ])
    }
}

/// Splits what a descriptor delivers into lines (without the newline) until end of file. A line longer than
/// `maximumLineBytes` is cut there, so a child cannot make the server hold an unbounded line.
enum LineReader {
    static let maximumLineBytes = 64 << 10

    static func read(_ fd: Int32, line: (String) -> Void) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            var start = 0
            for index in 0..<count where buffer[index] == 0x0A {
                pending.append(contentsOf: buffer[start..<index])
                line(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
                start = index + 1
            }
            pending.append(contentsOf: buffer[start..<count])
            if pending.count > maximumLineBytes {
                line(String(decoding: pending.prefix(maximumLineBytes), as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
            }
        }
        if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
    }
}
