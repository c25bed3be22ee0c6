import Foundation

/// A batch's log: the last lines in memory, for `GET /batches/{id}/log` (Livy keeps a tail too), and every line
/// appended to a file in the batch's directory, which is rotated once past a size (one older file, `log.1`), so a
/// pipeline that runs for months does not fill the disk.
struct LogTail: Sendable {
    let kept: Int
    private(set) var lines: [String] = []
    /// Lines of standard error only, for the cause of a death (sinks may fill standard output).
    private(set) var lastErrors: [String] = []
    private let file: URL
    private let fileLimit: Int
    private var fileBytes: Int
    /// Open while lines come (a console sink may write thousands a second); closed at rotation and by `close`.
    private var handle: FileHandle?

    init(kept: Int, file: URL, fileLimit: Int) {
        self.kept = kept
        self.file = file
        self.fileLimit = fileLimit
        fileBytes = ((try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? Int) ?? 0
    }

    mutating func append(_ line: String, isError: Bool) {
        lines.append(line)
        if lines.count > kept + kept / 4 { lines.removeFirst(lines.count - kept) }
        if isError {
            lastErrors.append(line)
            if lastErrors.count > 20 { lastErrors.removeFirst(lastErrors.count - 10) }
        }
        appendToFile(line)
    }

    /// The kept lines from `from` (index into the kept lines), at most `size`; the default is the last 100.
    func page(from: Int?, size: Int?) -> (from: Int, lines: [String]) {
        let window = lines.suffix(kept)
        let size = max(0, size ?? 100)
        let start = min(window.count, max(0, from ?? max(0, window.count - size)))
        let end = min(window.count, start + size)
        return (start, Array(window.dropFirst(start).prefix(end - start)))
    }

    var count: Int { min(lines.count, kept) }

    private mutating func appendToFile(_ line: String) {
        let bytes = Data((line + "\n").utf8)
        if fileBytes + bytes.count > fileLimit {
            close()
            let older = file.appendingPathExtension("1")
            try? FileManager.default.removeItem(at: older)
            try? FileManager.default.moveItem(at: file, to: older)
            fileBytes = 0
        }
        if handle == nil {
            if !FileManager.default.fileExists(atPath: file.path) {
                _ = FileManager.default.createFile(atPath: file.path, contents: nil)
            }
            handle = try? FileHandle(forWritingTo: file)
            _ = try? handle?.seekToEnd()
        }
        guard let handle else { return }
        try? handle.write(contentsOf: bytes)
        fileBytes += bytes.count
    }

    /// Closes the file (the child ended); the next line opens it again.
    mutating func close() {
        try? handle?.close()
        handle = nil
    }
}
