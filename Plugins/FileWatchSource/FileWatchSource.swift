import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `file-watch`: Spark's `textFileStream`. Every file that appears in a directory (matching a glob) is read once,
/// one record per line.
///
/// One partition. Its offsets number the lines of all files in the order they were discovered (files found in the
/// same scan by name), so a range of offsets always means the same lines. Discovery runs on a background thread:
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
        ],
        concurrent: true
    )

    /// What the watcher thread and readers share. Guarded by `state`'s mutex.
    struct State {
        var files: [IndexedFile] = []
        var total: UInt64 = 0
        /// Names already indexed or deliberately skipped.
        var known: Set<String> = []
        /// Names seen by a scan but not yet stable: (size, modification time).
        var candidates: [String: (Int, Int)] = [:]
        var lastError: String?
        /// Files the index log lists but that are gone (or changed) since: their offsets cannot be read.
        var missing: [(name: String, offsets: Range<UInt64>)] = []
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

    public func partitionCount() throws -> Int { 1 }

    public func available(partition: Int) throws -> Range<UInt64> {
        watcher.state.withLock { state in
            if let error = state.lastError {
                state.lastError = nil
                watcher.context.log(.warning, error)
            }
            _ = partition
            return 0..<state.total
        }
    }

    public func read(partition: Int, offsets: Range<UInt64>, into output: inout BatchBuilder) throws {
        // Find the files covering the range; read outside the lock (the file list is append-only).
        let gone = watcher.state.withLock { $0.missing.first { $0.offsets.overlaps(offsets) } }
        if let gone {
            throw PluginError(
                "lines \(gone.offsets.lowerBound)..<\(gone.offsets.upperBound) were in '\(gone.name)', which is gone or changed since it was indexed"
            )
        }
        let files: [IndexedFile] = watcher.state.withLock { state in
            var first = 0
            var last = state.files.count
            while first < last {  // the first file whose end is past the range's start
                let middle = (first + last) / 2
                if state.files[middle].endOffset <= offsets.lowerBound { first = middle + 1 } else { last = middle }
            }
            var covering: [IndexedFile] = []
            var index = first
            while index < state.files.count && state.files[index].firstOffset < offsets.upperBound {
                covering.append(state.files[index])
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
            throw PluginError("offsets \(offsets.lowerBound)..<\(offsets.upperBound) are beyond the \(files.count) indexed files")
        }
    }
}
