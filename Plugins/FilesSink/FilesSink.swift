import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// `files`: Spark's `saveAsTextFiles`. One file per batch, `PREFIX-<batch time ms>[.SUFFIX]`, written to a temporary
/// file and renamed into place at commit, so a file is either absent or complete, and a replay of a batch replaces
/// its file instead of adding a second one.
public final class FilesSink: SinkPlugin {
    public struct Configuration: Decodable, Sendable {
        var prefix: String
        var suffix: String
        var format: String
        var fsync: Bool
    }

    public static let info = PluginInfo(
        name: "files",
        version: "1.0.0",
        description: "Writes each batch to its own file, atomically (Spark's saveAsTextFiles)",
        options: [
            .path("prefix", description: "Output path prefix: files are PREFIX-<batch time ms>[.SUFFIX]", required: true),
            .string("suffix", description: "File extension, without the dot; empty for none", default: ""),
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
    private let baseName: String
    private let suffix: String
    private let tsv: Bool
    private let sync: Bool
    /// The open temporary file of the batch being written. Sinks are called from one thread: no lock needed.
    private var fd: Int32 = -1
    private var temporaryPath = ""
    private var buffer: [UInt8] = []

    public init(configuration: Configuration, context: PluginContext) throws {
        let prefix = configuration.prefix
        guard !prefix.isEmpty, !prefix.hasSuffix("/") else {
            throw PluginError("configuration key 'prefix': '\(prefix)' must end with a file name prefix, not '/'")
        }
        if let slash = prefix.lastIndex(of: "/") {
            directory = slash == prefix.startIndex ? "/" : String(prefix[..<slash])
            baseName = String(prefix[prefix.index(after: slash)...])
        } else {
            directory = "."
            baseName = prefix
        }
        suffix = configuration.suffix.hasPrefix(".") ? String(configuration.suffix.dropFirst()) : configuration.suffix
        tsv = configuration.format == "tsv"
        sync = configuration.fsync
        try Self.makeDirectories(directory)
        guard access(directory, W_OK) == 0 else {
            throw PluginError("configuration key 'prefix': directory '\(directory)' is not writable")
        }
        buffer.reserveCapacity(1 << 20)
    }

    deinit { discard() }

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

    /// The final name of a batch's file.
    func fileName(_ batch: BatchInfo) -> String {
        "\(directory)/\(baseName)-\(batch.timeMilliseconds)" + (suffix.isEmpty ? "" : ".\(suffix)")
    }

    public func begin(_ batch: BatchInfo) throws {
        discard()
        temporaryPath = "\(directory)/.\(baseName)-\(batch.timeMilliseconds).tmp-\(getpid())"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SinkError.retry("cannot create '\(temporaryPath)': \(errorText())") }
        buffer.removeAll(keepingCapacity: true)
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
                    throw SinkError.retry("cannot write '\(temporaryPath)': \(errorText())")
                }
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    public func commit(_ batch: BatchInfo) throws {
        guard fd >= 0 else { throw SinkError.fatal("commit without begin") }
        try flush()
        if sync && fsync(fd) != 0 { throw SinkError.retry("cannot fsync '\(temporaryPath)': \(errorText())") }
        close(fd)
        fd = -1
        let final = fileName(batch)
        guard rename(temporaryPath, final) == 0 else {
            throw SinkError.retry("cannot rename '\(temporaryPath)' to '\(final)': \(errorText())")
        }
        temporaryPath = ""
        if sync {
            let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directoryFD >= 0 {
                defer { close(directoryFD) }
                if fsync(directoryFD) != 0 { throw SinkError.retry("cannot fsync directory '\(directory)': \(errorText())") }
            }
        }
    }

    /// Drops a batch that was begun and not committed.
    private func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !temporaryPath.isEmpty {
            unlink(temporaryPath)
            temporaryPath = ""
        }
    }
}

private func errorText() -> String { String(cString: strerror(errno)) }

@c(sluice_plugin_entry_v1)
public func sluicePluginEntry(_ hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
    PluginExport.descriptor(for: FilesSink.self, hostABI: hostABI)
}
