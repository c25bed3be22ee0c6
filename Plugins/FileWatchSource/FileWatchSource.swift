import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `file-watch`: Spark's `textFileStream`. Every file that appears in a directory (matching a glob) is read once,
/// one record per line.
///
/// `partitions` partitions (one by default). Each file belongs to one: a new file goes to the partition with the
/// fewest lines so far (the lowest-numbered of those tied), and a partition's offsets number the lines of its files
/// in the order they were discovered (files found in the same scan by name), so a range of offsets always means the
/// same lines; with checkpoints the index log keeps which file went where. Discovery runs on a background thread:
/// inotify (`IN_CLOSE_WRITE`, `IN_MOVED_TO`) with a rescan every `poll_interval_ms` as a safety net, or polling
/// alone. A file found by a scan rather than an inotify completion event is indexed once its size and
/// modification time are the same in two scans in a row, so a file still being written in place is not read early.
public final class FileWatchSource: SourcePlugin {
    public struct Configuration: Decodable, Sendable {
        var directory: String
        var glob: String
        var start: String
        var poll_interval_ms: Int
        var use_inotify: Bool
        var partitions: Int
    }

    public static let info = PluginInfo(
        name: "file-watch",
        version: "1.0.0",
        description: "Reads each new file in a directory once, a record per line (Spark's textFileStream)",
        options: [
            .path("directory", description: "The directory to watch", required: true),
            .string("glob", description: "Names of the files to read (fnmatch pattern)", default: "*"),
            .string(
                "start",
                description: "Files present at start: read them (earliest) or skip them (latest)",
                default: "latest",
                allowed: ["earliest", "latest"]
            ),
            .integer("poll_interval_ms", description: "Rescan period; the only discovery when inotify is off", default: 250),
            .boolean("use_inotify", description: "Watch the directory with inotify (Linux)", default: true),
            .integer(
                "partitions",
                description: "Partitions the files are spread over (each file in one); may grow between runs, never shrink",
                default: 1
            ),
        ],
        concurrent: true
    )

    /// One partition's files, in offset order.
    struct Partition {
        var files: [IndexedFile] = []
        /// The end of the partition's offsets: its lines so far.
        var total: UInt64 = 0
        /// Files the index log lists but that are gone (or changed) since: their offsets cannot be read.
        var missing: [(name: String, offsets: Range<UInt64>)] = []
    }

    /// What the watcher thread and readers share. Guarded by `state`'s mutex.
    struct State {
        var partitions: [Partition]
        /// Names already indexed or deliberately skipped.
        var known: Set<String> = []
        /// Names seen by a scan but not yet stable: (size, modification time).
        var candidates: [String: (Int, Int)] = [:]
        var lastError: String?

        init(partitions: Int) { self.partitions = Array(repeating: Partition(), count: partitions) }

        /// Where a new file goes, given each partition's lines so far: the partition with the fewest, the
        /// lowest-numbered of those tied.
        static func emptiest(_ totals: [UInt64]) -> Int {
            totals.indices.min { (totals[$0], $0) < (totals[$1], $1) } ?? 0
        }
    }

    private let watcher: Watcher
    private let thread: PluginThread

    public init(configuration: Configuration, context: PluginContext) throws {
        let watcher = try Watcher(configuration: configuration, context: context)
        self.watcher = watcher
        // The thread holds the watcher, never this object: destroying the instance stops and joins the thread.
        thread = try PluginThread { stop in watcher.watch(stop) }
    }

    /// `sluice validate`: the options `init` checks, without watching anything.
    public static func check(configuration: Configuration, context: PluginContext) throws {
        try Watcher.checkOptions(configuration)
    }

    // MARK: SourcePlugin

    public func partitionCount() throws -> Int { watcher.partitionCount }

    public func available(partition: Int) throws -> Range<UInt64> {
        try watcher.checkPartition(partition)
        return watcher.state.withLock { state in
            if let error = state.lastError {
                state.lastError = nil
                watcher.context.log(.warning, error)
            }
            return 0..<state.partitions[partition].total
        }
    }

    public func read(partition: Int, offsets: Range<UInt64>, into output: inout BatchBuilder) throws {
        // Find the files covering the range; read outside the lock (the file list is append-only).
        try watcher.checkPartition(partition)
        let gone = watcher.state.withLock { $0.partitions[partition].missing.first { $0.offsets.overlaps(offsets) } }
        if let gone {
            throw PluginError(
                "lines \(gone.offsets.lowerBound)..<\(gone.offsets.upperBound) were in '\(gone.name)', which is gone or changed since it was indexed"
            )
        }
        let files: [IndexedFile] = watcher.state.withLock { state in
            let files = state.partitions[partition].files
            var first = 0
            var last = files.count
            while first < last {  // the first file whose end is past the range's start
                let middle = (first + last) / 2
                if files[middle].endOffset <= offsets.lowerBound { first = middle + 1 } else { last = middle }
            }
            var covering: [IndexedFile] = []
            var index = first
            while index < files.count && files[index].firstOffset < offsets.upperBound {
                covering.append(files[index])
                index += 1
            }
            return covering
        }
        var position = offsets.lowerBound
        for file in files where file.lineCount > 0 {
            let from = Int(max(position, file.firstOffset) - file.firstOffset)
            let to = Int(min(offsets.upperBound, file.endOffset) - file.firstOffset)
            try file.read(lines: from, to: to, into: &output)
            position = file.firstOffset + UInt64(to)
        }
        guard position == offsets.upperBound else {
            throw PluginError(
                "offsets \(offsets.lowerBound)..<\(offsets.upperBound) of partition \(partition) are beyond its \(files.count) indexed files"
            )
        }
    }
}
