import Dispatch
import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One file the source has discovered: where its lines sit in the partition's offsets and a sparse index of where
/// every 4096th line starts, so reading a range never scans from the top of the file.
struct IndexedFile: Sendable {
    static let stride = 4096

    var path: String
    /// The source partition the file belongs to.
    var partition = 0
    /// The partition offset of the file's first line.
    var firstOffset: UInt64
    var lineCount: UInt64
    /// The byte size when indexed; bytes appended later are not read (files must be complete when they appear).
    var size: Int
    /// Byte offset of line `k × stride`.
    var sparse: [Int]

    var endOffset: UInt64 { firstOffset + lineCount }

    /// Indexes every one of `paths` (offsets from 0, partition 0), several at a time on the machine's cores: a file's
    /// result is its index or why it could not be indexed, in the order of `paths`.
    static func indexAll(_ paths: [String]) -> [Result<IndexedFile, any Error>] {
        guard paths.count > 1 else { return paths.map { path in Result { try index(path: path, firstOffset: 0) } } }
        let results = Mutex<[Result<IndexedFile, any Error>?]>(Array(repeating: nil, count: paths.count))
        DispatchQueue.concurrentPerform(iterations: paths.count) { i in
            let result = Result { try index(path: paths[i], firstOffset: 0) }
            results.withLock { $0[i] = result }
        }
        return results.withLock { $0.map { $0! } }
    }

    /// Scans `path` once: counts lines and records the sparse index. A final line without a newline counts.
    static func index(path: String, firstOffset: UInt64) throws -> IndexedFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileWatchError("cannot open '\(path)': \(errorText())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileWatchError("cannot stat '\(path)': \(errorText())") }
        let size = Int(info.st_size)
        var sparse = [0]
        var lines = 0
        var position = 0
        var lastByte: UInt8 = 10
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        while position < size {
            let n = pread(fd, buffer, min(chunk, size - position), off_t(position))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileWatchError("cannot read '\(path)': \(errorText())")
            }
            if n == 0 { break }  // truncated while indexing: index what is there
            var cursor = buffer
            var remaining = n
            while remaining > 0, let hit = memchr(cursor, 10, remaining) {
                lines += 1
                let consumed = hit - cursor + 1
                cursor = UnsafeMutableRawPointer(hit) + 1
                remaining -= consumed
                if lines % stride == 0 { sparse.append(position + (cursor - buffer)) }
            }
            lastByte = buffer.load(fromByteOffset: n - 1, as: UInt8.self)
            position += n
        }
        if position > 0 && lastByte != 10 { lines += 1 }
        return IndexedFile(path: path, firstOffset: firstOffset, lineCount: UInt64(lines), size: position, sparse: sparse)
    }

    /// Appends the file's lines `[from, to)` (file-local line numbers) to `output`, without their line endings.
    func read(lines from: Int, to: Int, into output: inout BatchBuilder) throws {
        guard from < to else { return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileWatchError("cannot open '\(path)' to read lines \(from)..<\(to): \(errorText())") }
        defer { close(fd) }
        var position = sparse[from / Self.stride]
        // The lines end before the first indexed line at or after `to` starts: read no further.
        let firstIndexedAfter = (to + Self.stride - 1) / Self.stride
        let end = firstIndexedAfter < sparse.count ? sparse[firstIndexedAfter] : size
        var skip = from % Self.stride
        var wanted = to - from
        var carry: [UInt8] = []
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        while wanted > 0 && position < end {
            let n = pread(fd, buffer, min(chunk, end - position), off_t(position))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileWatchError("cannot read '\(path)': \(errorText())")
            }
            if n == 0 { break }
            position += n
            var cursor = UnsafeRawPointer(buffer)
            var remaining = n
            while wanted > 0 && remaining > 0 {
                guard let hit = memchr(cursor, 10, remaining) else {
                    if skip == 0 { carry.append(contentsOf: UnsafeRawBufferPointer(start: cursor, count: remaining)) }
                    remaining = 0
                    break
                }
                let length = UnsafeRawPointer(hit) - cursor
                if skip > 0 {
                    skip -= 1
                    carry.removeAll(keepingCapacity: true)
                } else if carry.isEmpty {
                    appendLine(UnsafeRawBufferPointer(start: cursor, count: length), &output)
                    wanted -= 1
                } else {
                    carry.append(contentsOf: UnsafeRawBufferPointer(start: cursor, count: length))
                    carry.withUnsafeBytes { appendLine($0, &output) }
                    carry.removeAll(keepingCapacity: true)
                    wanted -= 1
                }
                cursor += length + 1
                remaining -= length + 1
            }
        }
        // A final line without a newline: kept as it is (a carriage return there is data, see `appendLine`).
        if wanted > 0 && skip == 0 && position >= size && !carry.isEmpty {
            carry.withUnsafeBytes { output.append($0) }
            wanted -= 1
        }
        guard wanted == 0 else {
            throw FileWatchError("'\(path)' changed after it was indexed: \(wanted) of lines \(from)..<\(to) are missing")
        }
    }
}
