#if canImport(Glibc)
import Glibc
#endif

/// A directory opened once, in which files are replaced atomically and durably. Every name is resolved relative to
/// the descriptor, so the directory cannot be swapped for another (a symlink, a rename) under its user.
///
/// The one way first-party code replaces a whole file — the files sink's batches, the socket source's committed
/// offset, the Event Hubs partition map, and (for the host) the checkpoint store: write a temporary file
/// (`O_CREAT | O_EXCL | O_NOFOLLOW` under an unpredictable name, so a planted symlink is never followed), fsync it,
/// `renameat` it over the final name (which replaces a symlink there instead of writing through it), fsync the
/// directory so the rename itself survives a power loss. After a crash the final name holds the old or the new
/// contents, never a mix; `removeStaleTemporaries` clears the temporary files a dead process left.
package final class DurableDirectory: @unchecked Sendable {  // immutable; the descriptor is only read
    package let path: String
    /// The open directory (`O_RDONLY | O_DIRECTORY`), closed when this is released.
    package let descriptor: Int32

    package init(path: String) throws(DurableFileError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DurableFileError("open directory", path) }
    }

    deinit { close(descriptor) }

    /// Replaces `name` (a name in this directory, without '/') with `bytes`, atomically and durably.
    package func writeAtomically(_ bytes: [UInt8], to name: String) throws(DurableFileError) {
        let file = try createTemporary(for: name)
        try file.write(bytes)
        try file.commit()
    }

    /// A new temporary file that becomes `name` at `commit` (and is removed if it never does).
    package func createTemporary(for name: String) throws(DurableFileError) -> AtomicFile {
        try AtomicFile(in: self, name: name)
    }

    /// The whole contents of `name`, or nil when there is no such file.
    package func read(_ name: String) throws(DurableFileError) -> [UInt8]? {
        let fd = openat(descriptor, name, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw DurableFileError("open", path(of: name))
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DurableFileError("read", path(of: name))
            }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    /// Makes the directory's entries (files created, renamed or removed in it) durable.
    package func sync() throws(DurableFileError) {
        guard fsync(descriptor) == 0 else { throw DurableFileError("fsync directory", path) }
    }

    /// The full path of `name`, for messages.
    package func path(of name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    /// Removes the temporary files for final names starting with `prefix` that processes no longer running left
    /// (a write torn by a crash); returns how many. Those of a live process other than this one stay (another
    /// sluice writing the same names); this process's own count as left over, since a process id is reused after a
    /// reboot — call it before this process writes any. A symlink is removed, never followed.
    @discardableResult
    package func removeStaleTemporaries(prefix: String) -> Int {
        let listing = dup(descriptor)
        guard listing >= 0, let stream = fdopendir(listing) else {
            if listing >= 0 { close(listing) }
            return 0
        }
        var names: [String] = []
        while let entry = readdir(stream) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        closedir(stream)
        var removed = 0
        for name in names {
            guard let owner = TemporaryFileName.owner(of: name, prefix: prefix) else { continue }
            let dead = owner == getpid() || (kill(owner, 0) != 0 && errno == ESRCH)
            if dead && unlinkat(descriptor, name, 0) == 0 { removed += 1 }
        }
        return removed
    }
}
