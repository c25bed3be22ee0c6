#if canImport(Glibc)
import Glibc
#endif

/// Whether a plugin file could have been written by someone other than root or the user running `sluice`: the
/// rule of sshd's StrictModes, applied to the file and to every directory from it up to `/`.
///
/// - The file and each directory must be owned by root or by the effective user.
/// - The file must not be writable by group or others.
/// - A directory must not be writable by group or others, unless it is sticky and owned by root (like `/tmp`):
///   there others may add entries but not rename or remove one they do not own, and the next step of the path is
///   checked to be ours or root's. Without this exception no plugin could live under `/tmp` at all, and a file
///   another user planted in such a directory is still refused by its owner.
///
/// With every step owned by trusted users and writable by nobody else, nobody else can replace the file between
/// this check and `dlopen`, which opens it by the same absolute path.
enum PluginFilePermissions {
    /// What is wrong with the file whose status is `file` at the resolved absolute `path`, and with the
    /// directories holding it and `alsoDirectory` (the search directory, when the file was reached through a
    /// symlink in it); empty when nothing is.
    static func problems(path: String, file: stat, alsoDirectory: String? = nil) -> [String] {
        let user = geteuid()
        var problems = problems(of: file, what: "file", user: user)
        var checked = Set<String>()
        for start in [parent(of: path), alsoDirectory].compactMap({ $0 }) {
            var directory: String? = start
            while let current = directory, checked.insert(current).inserted {
                var status = stat()
                if stat(current, &status) != 0 {
                    problems.append("cannot check directory \(current): \(String(cString: strerror(errno)))")
                } else {
                    problems += self.problems(of: status, what: "directory \(current)", user: user)
                }
                directory = parent(of: current)
            }
        }
        return problems
    }

    private static func problems(of status: stat, what: String, user: uid_t) -> [String] {
        var problems: [String] = []
        if status.st_uid != 0 && status.st_uid != user {
            problems.append("\(what) is owned by uid \(status.st_uid), neither root nor the user running sluice (uid \(user))")
        }
        let mode = status.st_mode
        let isDirectory = mode & S_IFMT == S_IFDIR
        let stickyRootDirectory = isDirectory && mode & S_ISVTX != 0 && status.st_uid == 0
        if mode & 0o022 != 0 && !stickyRootDirectory {
            let who = mode & 0o022 == 0o022 ? "group and others" : mode & 0o020 != 0 ? "group" : "others"
            problems.append("\(what) is writable by \(who) (mode \(String(mode & 0o7777, radix: 8)))")
        }
        return problems
    }

    /// The directory holding `path` ("/" for a top-level entry), nil for "/" itself.
    private static func parent(of path: String) -> String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
