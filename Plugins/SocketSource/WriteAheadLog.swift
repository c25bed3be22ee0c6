import DurableRecords
import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// The socket source's write-ahead log: every received line is appended here before it may enter a batch, so a
/// line that reached the log is neither lost nor read twice across crashes: the engine's committed position says
/// where to resume, and the log still holds everything after it.
///
/// Segments `wal-<first offset>.log` in the instance's state directory hold one checksummed record per line, in the
/// format of `ChecksummedLines` (header `SLUICE-WAL 2`). A new segment starts once the current one holds
/// `segmentLines` lines; a segment is deleted once every line in it is committed. Opening the log verifies every
/// record: a torn last record of the newest segment (the process died in the middle of a write) is cut off; any
/// other damage is an error naming the segment and byte offset, so that no damaged line is ever replayed as data.
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
        let stateDirectory: DurableDirectory
        do { stateDirectory = try DurableDirectory(path: directory) } catch { throw PluginError("\(error)") }
        let first = found.first ?? 0
        buffer = LineBuffer(firstOffset: first)
        var expected = first
        var missingNewline = false
        for segment in found {
            let path = Self.segmentPath(directory, segment)
            guard segment == expected else {
                throw PluginError(
                    "the write-ahead log in \(directory) has a gap: \(path) starts at line \(segment), but the segment before "
                        + "it ends at line \(expected); it was changed by hand or damaged. `sluice checkpoints reset` starts over"
                )
            }
            let bytes: [UInt8]
            do { bytes = try stateDirectory.read("wal-\(segment).log") ?? [] } catch { throw PluginError("\(error)") }
            let contents: ChecksummedLines.Contents
            switch ChecksummedLines.parse(bytes, kind: Self.kind) {
            case .success(let parsed): contents = parsed
            case .failure(let error): throw Self.damaged(path, at: error.offset, error.explanation)
            }
            if contents.validEnd != bytes.count {
                // A torn last record: it was never synced, so it never entered a batch. Only the newest segment can
                // have one: a segment is synced before the next one is started.
                guard segment == found.last else { throw Self.damaged(path, at: contents.validEnd, "the segment ends in an incomplete record, but a newer segment follows it") }
                guard truncate(path, off_t(contents.validEnd)) == 0 else {
                    throw PluginError("cannot cut the torn end off \(path): \(String(cString: strerror(errno)))")
                }
            }
            bytes.withUnsafeBytes { raw in
                for record in contents.records { buffer.append(UnsafeRawBufferPointer(rebasing: raw[record])) }
            }
            expected += UInt64(contents.records.count)
            linesInSegment = contents.records.count
            segmentBytes = contents.validEnd
            missingNewline = contents.missingNewline
        }
        segments = found
        nextOffset = expected
        durableEnd = expected
        if let last = found.last {
            fd = open(Self.segmentPath(directory, last), O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw PluginError("cannot open \(Self.segmentPath(directory, last)): \(String(cString: strerror(errno)))") }
            if missingNewline {
                // The newest segment ends in a whole record without its newline: kept, and the newline added.
                guard Glibc.write(fd, [UInt8(10)], 1) == 1 else {
                    throw PluginError("cannot end the last record of \(Self.segmentPath(directory, last)): \(String(cString: strerror(errno)))")
                }
                segmentBytes += 1
            }
        }
    }

    deinit { if fd >= 0 { _ = Glibc.close(fd) } }

    static let kind = "SLUICE-WAL"

    private static func damaged(_ path: String, at offset: Int, _ reason: String) -> PluginError {
        PluginError(
            "the write-ahead log \(path) is damaged at byte \(offset): \(reason). No line of it is replayed, so the source "
                + "does not start; `sluice checkpoints reset` on the pipeline's checkpoint directory starts over (the "
                + "uncommitted lines in the log are lost)"
        )
    }

    private static func segmentPath(_ directory: String, _ first: UInt64) -> String { "\(directory)/wal-\(first).log" }
    private func segmentPath(_ first: UInt64) -> String { Self.segmentPath(directory, first) }

    /// Stages a line (which holds no newline) for the next `flush`.
    func stage(_ line: UnsafeRawBufferPointer) {
        ChecksummedLines.append(line, to: &pending)
        pendingLines += 1
    }

    /// Whether staged lines wait to be written (a `flush` failed).
    var hasPending: Bool { pendingLines > 0 }

    /// Why a flush failed. A failed write (ENOSPC, EDQUOT, EIO) leaves nothing of the staged lines in the log and
    /// keeps them staged, so `flush` can be tried again; a failed fsync cannot (the kernel may have dropped data).
    struct FlushError: Error, CustomStringConvertible {
        var description: String
        var retryable: Bool
    }

    /// Writes the staged lines (not yet synced). On a write failure nothing of them stays in the log and they stay
    /// staged, for the next `flush`.
    func flush() throws(FlushError) {
        guard pendingLines > 0 else { return }
        if fd < 0 || linesInSegment >= segmentLines { try startSegment() }
        if segmentBytes == 0 { pending.insert(contentsOf: ChecksummedLines.header(Self.kind), at: 0) }
        if let code = pending.withUnsafeBytes({ writeFully(fd, $0) }) {
            // Take back a partial write so that the next one starts on a record boundary.
            _ = ftruncate(fd, off_t(segmentBytes))
            if segmentBytes == 0 { pending.removeSubrange(0..<ChecksummedLines.header(Self.kind).count) }
            throw FlushError(description: "cannot append to the write-ahead log in \(directory): \(String(cString: strerror(code)))", retryable: true)
        }
        segmentBytes += pending.count
        linesInSegment += pendingLines
        nextOffset += UInt64(pendingLines)
        pending.removeAll(keepingCapacity: pending.capacity <= 4 << 20)
        pendingLines = 0
    }

    private func startSegment() throws(FlushError) {
        if fd >= 0 {
            // The closed segment must be durable before lines after it are.
            guard fsync(fd) == 0 else {
                throw FlushError(description: "cannot fsync the write-ahead log in \(directory): \(String(cString: strerror(errno)))", retryable: false)
            }
            _ = Glibc.close(fd)
            fd = -1
        }
        let path = segmentPath(nextOffset)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FlushError(description: "cannot create \(path): \(String(cString: strerror(errno)))", retryable: true) }
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
            do { try DurableDirectory(path: directory).sync() } catch { throw PluginError("\(error)") }
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
