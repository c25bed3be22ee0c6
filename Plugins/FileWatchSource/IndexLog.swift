import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// The durable record of what a file-watch source has indexed and skipped, in offset order, kept in its state
/// directory when the pipeline has checkpoints. After a restart the source rebuilds the same offsets from it — so a
/// committed position means the same lines — and reads once the files that arrived while it was down.
///
/// One line per file: `file<TAB>first offset<TAB>lines<TAB>bytes<TAB>name`, or `skip<TAB>name` for a file present
/// at the first start with `start: latest`. Appends are fsynced before the files' offsets are offered to the engine.
struct IndexLog {
    enum Entry: Equatable {
        case file(name: String, firstOffset: UInt64, lines: UInt64, size: Int)
        case skipped(name: String)

        var name: String {
            switch self {
            case .file(let name, _, _, _), .skipped(let name): name
            }
        }
    }

    let path: String

    init(directory: String) { path = directory + "/files.log" }

    /// The entries so far; a torn last line (a crash mid-append) is ignored, as it was never acknowledged.
    func read() -> [Entry] {
        guard let fd = Optional(open(path, O_RDONLY | O_CLOEXEC)), fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        var entries: [Entry] = []
        for line in bytes.split(separator: 10, omittingEmptySubsequences: true) where line.count > 0 {
            let fields = String(decoding: line, as: UTF8.self).split(separator: "\t", maxSplits: 4).map(String.init)
            if fields.count == 2, fields[0] == "skip" {
                entries.append(.skipped(name: fields[1]))
            } else if fields.count == 5, fields[0] == "file", let first = UInt64(fields[1]), let lines = UInt64(fields[2]),
                let size = Int(fields[3])
            {
                entries.append(.file(name: fields[4], firstOffset: first, lines: lines, size: size))
            }
        }
        // Only complete lines count: a line without its newline was being written when the process died.
        if let last = bytes.last, last != 10, !entries.isEmpty { entries.removeLast() }
        return entries
    }

    /// Appends `entries` durably.
    func append(_ entries: [Entry]) throws {
        guard !entries.isEmpty else { return }
        var text = ""
        for entry in entries {
            switch entry {
            case .file(let name, let first, let lines, let size): text += "file\t\(first)\t\(lines)\t\(size)\t\(name)\n"
            case .skipped(let name): text += "skip\t\(name)\n"
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PluginError("cannot open '\(path)': \(errorText())") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PluginError("cannot append to '\(path)': \(errorText())")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw PluginError("cannot fsync '\(path)': \(errorText())") }
    }
}
