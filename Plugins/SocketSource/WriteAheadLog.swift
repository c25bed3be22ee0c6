import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// The socket source's write-ahead log: every received line is appended here before it may enter a batch, so a
/// line that reached the log is neither lost nor read twice across crashes: the engine's committed position says
/// where to resume, and the log still holds everything after it.
///
/// Segments `wal-<first offset>.log` in the instance's state directory hold newline-terminated lines. A new segment
/// starts once the current one holds `segmentLines` lines; a segment is deleted once every line in it is committed.
/// A torn last line (the process died in the middle of a write) is cut off when the log is opened again.
///
/// Not thread-safe: the source keeps it inside its mutex, beside the in-memory lines.
final class WriteAheadLog: @unchecked Sendable {  // only used inside the socket source's mutex
    let directory: String
    let segmentLines: Int
    private var fd: Int32 = -1
    /// First offsets of the segments on disk, ascending; the last is the one being written.
    private var segments: [UInt64] = []
    private var linesInSegment = 0
    private var segmentBytes = 0
    /// Lines staged by `stage` and not yet written.
    private var pending: [UInt8] = []
    private var pendingLines = 0
    /// The offset the next written line gets.
    private(set) var nextOffset: UInt64 = 0
    /// Everything below this offset is on stable storage.
    private(set) var durableEnd: UInt64 = 0
    /// A new segment's directory entry must be made durable with the next sync.
    private var directoryDirty = false

    /// Opens (or creates) the log in `directory` and loads the lines it holds into `buffer`, which then starts at
    /// the log's first retained offset.
    init(directory: String, segmentLines: Int = 100_000, recoveringInto buffer: inout LineBuffer) throws {
        self.directory = directory
        self.segmentLines = segmentLines
        var found: [UInt64] = []
        if let dir = opendir(directory) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasPrefix("wal-"), name.hasSuffix(".log"), let first = UInt64(name.dropFirst(4).dropLast(4)) {
                    found.append(first)
                }
            }
            closedir(dir)
        } else {
            throw PluginError("cannot open the write-ahead log directory \(directory): \(String(cString: strerror(errno)))")
        }
        found.sort()
        let first = found.first ?? 0
        buffer = LineBuffer(firstOffset: first)
        var expected = first
        for segment in found {
            let path = Self.segmentPath(directory, segment)
            guard segment == expected else {
                throw PluginError(
                    "the write-ahead log in \(directory) has a gap: \(path) starts at line \(segment), but the segment before "
                        + "it ends at line \(expected); it was changed by hand or damaged. `sluice checkpoints reset` starts over"
                )
            }
            var bytes = try Self.readAll(path)
            let end = (bytes.lastIndex(of: 10) ?? -1) + 1
            if end != bytes.count {
                // A torn last line: it never became durable, so it never entered a batch. Cut it off.
                bytes.removeSubrange(end...)
                guard truncate(path, off_t(end)) == 0 else {
                    throw PluginError("cannot cut the torn end off \(path): \(String(cString: strerror(errno)))")
                }
            }
            var lines = 0
            bytes.withUnsafeBytes { raw in
                var start = 0
                while start < raw.count, let newline = raw[start...].firstIndex(of: 10) {
                    buffer.append(UnsafeRawBufferPointer(rebasing: raw[start..<newline]))
                    start = newline + 1
                    lines += 1
                }
            }
            expected += UInt64(lines)
            linesInSegment = lines
            segmentBytes = bytes.count
        }
        segments = found
        nextOffset = expected
        durableEnd = expected
        if let last = found.last {
            fd = open(Self.segmentPath(directory, last), O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw PluginError("cannot open \(Self.segmentPath(directory, last)): \(String(cString: strerror(errno)))") }
        }
    }

    deinit { if fd >= 0 { _ = Glibc.close(fd) } }

    private static func segmentPath(_ directory: String, _ first: UInt64) -> String { "\(directory)/wal-\(first).log" }
    private func segmentPath(_ first: UInt64) -> String { Self.segmentPath(directory, first) }

    private static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PluginError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { _ = Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PluginError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    /// Stages a line for the next `flush`.
    func stage(_ line: UnsafeRawBufferPointer) {
        pending.append(contentsOf: line)
        pending.append(10)
        pendingLines += 1
    }

    /// Writes the staged lines (not yet synced). On failure nothing of them stays in the log, and the caller must
    /// drop them too: they get the same offsets again later.
    func flush() throws {
        guard pendingLines > 0 else { return }
        defer {
            pending.removeAll(keepingCapacity: pending.capacity <= 4 << 20)
            pendingLines = 0
        }
        if fd < 0 || linesInSegment >= segmentLines { try startSegment() }
        var written = 0
        while written < pending.count {
            let n = pending.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                // Take back a partial write so that the next one starts on a line boundary.
                _ = ftruncate(fd, off_t(segmentBytes))
                throw PluginError("cannot append to the write-ahead log in \(directory): \(reason)")
            }
            written += n
        }
        segmentBytes += pending.count
        linesInSegment += pendingLines
        nextOffset += UInt64(pendingLines)
    }

    private func startSegment() throws {
        if fd >= 0 {
            // The closed segment must be durable before lines after it are.
            guard fsync(fd) == 0 else { throw PluginError("cannot fsync the write-ahead log in \(directory): \(String(cString: strerror(errno)))") }
            _ = Glibc.close(fd)
            fd = -1
        }
        let path = segmentPath(nextOffset)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PluginError("cannot create \(path): \(String(cString: strerror(errno)))") }
        segments.append(nextOffset)
        linesInSegment = 0
        segmentBytes = 0
        directoryDirty = true
    }

    /// Makes every written line durable.
    func sync() throws {
        guard durableEnd < nextOffset || directoryDirty else { return }
        if fd >= 0, fsync(fd) != 0 {
            throw PluginError("cannot fsync the write-ahead log in \(directory): \(String(cString: strerror(errno)))")
        }
        if directoryDirty {
            let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dfd >= 0, fsync(dfd) == 0 else {
                if dfd >= 0 { _ = Glibc.close(dfd) }
                throw PluginError("cannot fsync the directory \(directory): \(String(cString: strerror(errno)))")
            }
            _ = Glibc.close(dfd)
            directoryDirty = false
        }
        durableEnd = nextOffset
    }

    /// Deletes the segments whose lines all lie below `offset` (committed). The segment being written stays.
    func trim(below offset: UInt64) {
        while segments.count > 1 && segments[1] <= offset {
            unlink(segmentPath(segments[0]))
            segments.removeFirst()
        }
    }

    /// The number of segment files.
    var segmentCount: Int { segments.count }
}
