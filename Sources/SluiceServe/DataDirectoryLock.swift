import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One server per data directory: an exclusive `flock` on `DATA/lock`, held while the server runs (the kernel drops
/// it when the process ends, however it ends). Two servers over one directory would each start every pipeline that
/// was running; the second of each would then fail on its checkpoint's lock, and both would write the same records.
final class DataDirectoryLock: Sendable {
    private let descriptor: Int32

    init(_ dataDirectory: URL) throws {
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let path = dataDirectory.appendingPathComponent("lock").path
        // Close-on-exec: the pipelines must not inherit (and so hold) the server's lock.
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ServeStartError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK ? "another sluice serve uses this data directory" : String(cString: strerror(errno))
            close(descriptor)
            throw ServeStartError("\(dataDirectory.path): \(reason)")
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}

/// Why a server cannot start (its data directory); the command line prints it and exits 1.
public struct ServeStartError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
