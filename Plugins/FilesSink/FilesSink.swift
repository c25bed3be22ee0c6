import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// `files`: Spark's `saveAsTextFiles`. One file per batch, `PREFIX-<batch time ms>[.SUFFIX]`, written to a temporary
/// file and renamed into place at commit, so a file is either absent or complete, and a replay of a batch replaces
/// its file instead of adding a second one (the host gives a batch run again the time of its first attempt).
///
/// Every file operation goes through a descriptor of the output directory opened once at create, so the directory
/// cannot be swapped for another under the sink. Temporary files are created with `O_CREAT | O_EXCL | O_NOFOLLOW`
/// under a random name: a symlink planted at a temporary name is never followed, and the final name is only ever
/// the target of a `rename`, which replaces a symlink there instead of writing through it. Temporary files of
/// processes that died mid-batch are removed at create.
public final class FilesSink: SinkPlugin {
    public struct Configuration: Decodable, Sendable {
        var prefix: String
        var suffix: String
        var format: String
        var fsync: Bool
    }

    public static let info = PluginInfo(
        name: "files",
        version: "1.1.0",
        description: "Writes each batch to its own file, atomically (Spark's saveAsTextFiles)",
        options: [
            .outputPath(
                "prefix", description: "Output path prefix: files are PREFIX-<batch time ms>[.SUFFIX]; relative to the "
                    + "pipeline file and inside its directory, or absolute", required: true),
            .string(
                "suffix", description: "File extension, without the dot and without '/'; empty for none", default: "",
                pattern: "^[^/]*$"),
            .string(
                "format",
                description: "text: (key,value) or value per line; tsv: key<TAB>value or value per line",
                default: "text",
                allowed: ["text", "tsv"]
            ),
            .boolean("fsync", description: "fsync each file and its directory before the batch commits", default: true),
        ]
    )

    private let directory: String
    /// The output directory, opened once: every name below is relative to it.
    private let directoryFD: Int32
    private let baseName: String
    private let suffix: String
    private let tsv: Bool
    private let sync: Bool
    /// The open temporary file of the batch being written. Sinks are called from one thread: no lock needed.
    private var fd: Int32 = -1
    private var temporaryName = ""
    private var buffer: [UInt8] = []

    public init(configuration: Configuration, context: PluginContext) throws {
        let prefix = configuration.prefix
        guard !prefix.isEmpty, !prefix.hasSuffix("/") else {
            throw PluginError("configuration key 'prefix': '\(prefix)' must end with a file name prefix, not '/'")
        }
        guard !prefix.contains("\0") else { throw PluginError("configuration key 'prefix': contains a NUL character") }
        if let slash = prefix.lastIndex(of: "/") {
            directory = slash == prefix.startIndex ? "/" : String(prefix[..<slash])
            baseName = String(prefix[prefix.index(after: slash)...])
        } else {
            directory = "."
            baseName = prefix
        }
        guard baseName != "." && baseName != ".." else {
            throw PluginError("configuration key 'prefix': '\(prefix)' must end with a file name prefix, not '\(baseName)'")
        }
        let suffix = configuration.suffix.hasPrefix(".") ? String(configuration.suffix.dropFirst()) : configuration.suffix
        guard !suffix.contains("/"), !suffix.contains("\0") else {
            throw PluginError(
                "configuration key 'suffix': '\(configuration.suffix)' must be a file extension; it cannot contain '/' "
                    + "(the directory belongs in 'prefix')"
            )
        }
        self.suffix = suffix
        tsv = configuration.format == "tsv"
        sync = configuration.fsync
        try Self.makeDirectories(directory)
        directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else {
            throw PluginError("configuration key 'prefix': cannot open directory '\(directory)': \(errorText())")
        }
        guard faccessat(directoryFD, ".", W_OK, 0) == 0 else {
            close(directoryFD)
            throw PluginError("configuration key 'prefix': directory '\(directory)' is not writable")
        }
        buffer.reserveCapacity(1 << 20)
        let removed = removeLeftovers()
        if removed > 0 {
            context.log(.info, "removed \(removed) temporary file(s) left in '\(directory)' by a process that stopped mid-batch")
        }
    }

    deinit {
        discard()
        close(directoryFD)
    }

    /// `mkdir -p`.
    private static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw PluginError("configuration key 'prefix': cannot create directory '\(current)': \(errorText())")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw PluginError("configuration key 'prefix': '\(path)' is not a directory")
        }
    }

    /// The marker between a temporary file's batch part and its owner: `.BASE-<time>.tmp-<pid>-<random>`.
    static let temporaryMarker = ".tmp-"

    /// The process that owns a temporary file of this sink's, from its name (`.BASE-….tmp-PID` or `….tmp-PID-RANDOM`),
    /// or nil when the name is not one.
    func temporaryOwner(_ name: String) -> pid_t? {
        let start = ".\(baseName)-"
        guard name.hasPrefix(start) else { return nil }
        // The last ".tmp-" after the prefix; what follows up to a '-' (or the end) is the owner's process id.
        let bytes = Array(name.utf8.dropFirst(start.utf8.count))
        let marker = Array(Self.temporaryMarker.utf8)
        guard bytes.count > marker.count,
            let at = (0...(bytes.count - marker.count)).last(where: { bytes[$0..<($0 + marker.count)].elementsEqual(marker) })
        else { return nil }
        let digits = bytes[(at + marker.count)...].prefix { $0 != UInt8(ascii: "-") }
        return pid_t(String(decoding: digits, as: UTF8.self))
    }

    /// Removes the temporary files of processes that no longer run (a batch begun and never committed: it will be
    /// written again). A file of a live process other than this one is left alone (another sluice on the same
    /// prefix). Symlinks are removed, never followed. Returns how many were removed.
    private func removeLeftovers() -> Int {
        let listing = dup(directoryFD)
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
            guard let owner = temporaryOwner(name) else { continue }
            let dead = owner == getpid() || (kill(owner, 0) != 0 && errno == ESRCH)
            if dead && unlinkat(directoryFD, name, 0) == 0 { removed += 1 }
        }
        return removed
    }

    /// The final name of a batch's file, in the output directory.
    func fileName(_ batch: BatchInfo) -> String {
        "\(baseName)-\(batch.timeMilliseconds)" + (suffix.isEmpty ? "" : ".\(suffix)")
    }

    public func begin(_ batch: BatchInfo) throws {
        discard()
        // A name nobody can predict, created only if nothing (a symlink included) is there yet.
        for _ in 0..<16 {
            let name = ".\(baseName)-\(batch.timeMilliseconds)\(Self.temporaryMarker)\(getpid())-"
                + String(UInt64.random(in: 0...UInt64.max), radix: 16)
            fd = openat(directoryFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd >= 0 {
                temporaryName = name
                buffer.removeAll(keepingCapacity: true)
                return
            }
            guard errno == EEXIST else { throw SinkError.retry("cannot create '\(directory)/\(name)': \(errorText())") }
        }
        throw SinkError.retry("cannot create a temporary file in '\(directory)': every name tried exists")
    }

    public func write(_ chunk: BatchView) throws {
        guard fd >= 0 else { throw SinkError.fatal("write without begin") }
        for i in 0..<chunk.count {
            if let key = chunk.key(at: i) {
                if !tsv { buffer.append(UInt8(ascii: "(")) }
                buffer.append(contentsOf: key)
                buffer.append(tsv ? 9 : UInt8(ascii: ","))
                appendValue(chunk, i)
                if !tsv { buffer.append(UInt8(ascii: ")")) }
            } else {
                appendValue(chunk, i)
            }
            buffer.append(10)
            if buffer.count >= 1 << 20 { try flush() }
        }
    }

    @inline(__always)
    private func appendValue(_ chunk: BatchView, _ i: Int) {
        switch chunk.valueType {
        case .bytes: buffer.append(contentsOf: chunk.value(at: i))
        case .int64: buffer.append(contentsOf: String(chunk.int64Value(at: i)).utf8)
        }
    }

    private func flush() throws {
        try buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw SinkError.retry("cannot write '\(directory)/\(temporaryName)': \(errorText())")
                }
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    public func commit(_ batch: BatchInfo) throws {
        guard fd >= 0 else { throw SinkError.fatal("commit without begin") }
        try flush()
        if sync && fsync(fd) != 0 { throw SinkError.retry("cannot fsync '\(directory)/\(temporaryName)': \(errorText())") }
        close(fd)
        fd = -1
        // rename replaces whatever is at the final name — a symlink included — and never writes through it.
        let final = fileName(batch)
        guard renameat(directoryFD, temporaryName, directoryFD, final) == 0 else {
            throw SinkError.retry("cannot rename '\(directory)/\(temporaryName)' to '\(directory)/\(final)': \(errorText())")
        }
        temporaryName = ""
        if sync && fsync(directoryFD) != 0 {
            throw SinkError.retry("cannot fsync directory '\(directory)': \(errorText())")
        }
    }

    /// Drops a batch that was begun and not committed.
    private func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !temporaryName.isEmpty {
            unlinkat(directoryFD, temporaryName, 0)
            temporaryName = ""
        }
    }
}

private func errorText() -> String { String(cString: strerror(errno)) }

@c(sluice_plugin_entry_v1)
public func sluicePluginEntry(_ hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
    PluginExport.descriptor(for: FilesSink.self, hostABI: hostABI)
}
