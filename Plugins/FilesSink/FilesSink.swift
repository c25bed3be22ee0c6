import DurableRecords
import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// `files`: Spark's `saveAsTextFiles`. One file per batch, `PREFIX-<batch time ms>[.SUFFIX]`, written to a temporary
/// file and renamed into place at commit, so a file is either absent or complete, and a replay of a batch replaces
/// its file instead of adding a second one (the host gives a batch run again the time of its first attempt).
///
/// The files are written with `DurableRecords`' `AtomicFile`, through the output directory opened once at create
/// (`DurableDirectory`), so the directory cannot be swapped for another under the sink: temporary files are created
/// with `O_CREAT | O_EXCL | O_NOFOLLOW` under a random name, so a symlink planted at a temporary name is never
/// followed, and the final name is only ever the target of a `rename`, which replaces a symlink there instead of
/// writing through it. Temporary files of processes that died mid-batch are removed at create.
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

    /// The output directory, opened once: every name below is relative to it.
    private let directory: DurableDirectory
    private let baseName: String
    private let suffix: String
    private let tsv: Bool
    private let sync: Bool
    /// The file of the batch being written. Sinks are called from one thread: no lock needed.
    private var file: AtomicFile?
    private var buffer: [UInt8] = []

    public init(configuration: Configuration, context: PluginContext) throws {
        let prefix = configuration.prefix
        guard !prefix.isEmpty, !prefix.hasSuffix("/") else {
            throw PluginError("configuration key 'prefix': '\(prefix)' must end with a file name prefix, not '/'")
        }
        guard !prefix.contains("\0") else { throw PluginError("configuration key 'prefix': contains a NUL character") }
        let directoryPath: String
        if let slash = prefix.lastIndex(of: "/") {
            directoryPath = slash == prefix.startIndex ? "/" : String(prefix[..<slash])
            baseName = String(prefix[prefix.index(after: slash)...])
        } else {
            directoryPath = "."
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
        try Self.makeDirectories(directoryPath)
        do { directory = try DurableDirectory(path: directoryPath) } catch {
            throw PluginError("configuration key 'prefix': \(error)")
        }
        guard faccessat(directory.descriptor, ".", W_OK, 0) == 0 else {
            throw PluginError("configuration key 'prefix': directory '\(directoryPath)' is not writable")
        }
        buffer.reserveCapacity(1 << 20)
        let removed = directory.removeStaleTemporaries(prefix: baseName + "-")
        if removed > 0 {
            context.log(.info, "removed \(removed) temporary file(s) left in '\(directoryPath)' by a process that stopped mid-batch")
        }
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

    /// The final name of a batch's file, in the output directory.
    func fileName(_ batch: BatchInfo) -> String {
        "\(baseName)-\(batch.timeMilliseconds)" + (suffix.isEmpty ? "" : ".\(suffix)")
    }

    public func begin(_ batch: BatchInfo) throws {
        discard()
        do { file = try directory.createTemporary(for: fileName(batch)) } catch { throw SinkError.retry(error.description) }
        buffer.removeAll(keepingCapacity: true)
    }

    public func write(_ chunk: BatchView) throws {
        guard file != nil else { throw SinkError.fatal("write without begin") }
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
        guard let file else { return }
        do { try file.write(buffer) } catch {
            throw SinkError.retry(error.description)
        }
        buffer.removeAll(keepingCapacity: true)
    }

    public func commit(_ batch: BatchInfo) throws {
        guard let file else { throw SinkError.fatal("commit without begin") }
        try flush()
        // rename replaces whatever is at the final name — a symlink included — and never writes through it.
        do { try file.commit(sync: sync) } catch { throw SinkError.retry(error.description) }
        self.file = nil
    }

    /// Drops a batch that was begun and not committed.
    private func discard() {
        file?.discard()
        file = nil
    }
}

private func errorText() -> String { String(cString: strerror(errno)) }
