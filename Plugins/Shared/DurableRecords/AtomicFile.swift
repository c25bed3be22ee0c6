#if canImport(Glibc)
import Glibc
#endif

/// A file being written under a temporary name in a `DurableDirectory`, which `commit` makes its final name,
/// atomically and durably; released uncommitted, it is removed. Written by one thread at a time.
package final class AtomicFile {
    package let directory: DurableDirectory
    /// The name the file gets at `commit`.
    package let name: String
    /// Where it is written until then (`TemporaryFileName`).
    package private(set) var temporaryName = ""
    private var fd: Int32 = -1

    /// Creates the temporary file, only where nothing (a symlink included) exists yet.
    init(in directory: DurableDirectory, name: String) throws(DurableFileError) {
        self.directory = directory
        self.name = name
        for _ in 0..<16 {
            let candidate = TemporaryFileName.make(for: name)
            fd = openat(directory.descriptor, candidate, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd >= 0 {
                temporaryName = candidate
                return
            }
            guard errno == EEXIST else { throw DurableFileError("create", directory.path(of: candidate)) }
        }
        errno = EEXIST
        throw DurableFileError("create a temporary file for", directory.path(of: name))
    }

    deinit { discard() }

    /// Appends `bytes` to the file.
    package func write(_ bytes: UnsafeRawBufferPointer) throws(DurableFileError) {
        guard fd >= 0 else {
            errno = EBADF
            throw DurableFileError("write", directory.path(of: name))
        }
        if let code = writeFully(fd, bytes) {
            errno = code
            throw DurableFileError("write", directory.path(of: temporaryName))
        }
    }

    /// Appends `bytes` to the file.
    package func write(_ bytes: [UInt8]) throws(DurableFileError) {
        let failure = bytes.withUnsafeBytes { raw in Result { () throws(DurableFileError) in try write(raw) } }
        try failure.get()
    }

    /// Gives the file its final name. With `sync` (the default) the file is fsynced before the rename and the
    /// directory after it, so once this returns the new contents survive a crash or power loss; without, the rename
    /// is still atomic but may be lost (the files sink's `fsync: false`).
    package func commit(sync: Bool = true) throws(DurableFileError) {
        guard fd >= 0 else {
            errno = EBADF
            throw DurableFileError("commit", directory.path(of: name))
        }
        if sync && fsync(fd) != 0 { throw DurableFileError("fsync", directory.path(of: temporaryName)) }
        close(fd)
        fd = -1
        guard renameat(directory.descriptor, temporaryName, directory.descriptor, name) == 0 else {
            throw DurableFileError("rename '\(directory.path(of: temporaryName))' to", directory.path(of: name))
        }
        temporaryName = ""
        if sync { try directory.sync() }
    }

    /// Closes and removes the temporary file (nothing once committed).
    package func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !temporaryName.isEmpty {
            unlinkat(directory.descriptor, temporaryName, 0)
            temporaryName = ""
        }
    }
}
