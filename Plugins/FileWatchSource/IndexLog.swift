import DurableRecords
import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// The durable record of what a file-watch source has indexed and skipped, in offset order, kept in its state
/// directory when the pipeline has checkpoints. After a restart the source rebuilds the same offsets from it — so a
/// committed position means the same lines — and reads once the files that arrived while it was down.
///
/// The file is in the checksummed format of `ChecksummedLines` (header `SLUICE-FILES 2`); each record's payload is
/// `file<TAB>first offset<TAB>lines<TAB>bytes<TAB>name` for a file of partition 0,
/// `pfile<TAB>partition<TAB>first offset<TAB>lines<TAB>bytes<TAB>name` for a file of another partition,
/// `skip<TAB>name` for a file present at the first start with `start: latest`, or `partitions<TAB>N` when the source
/// came to have N partitions (a log without one was written with one). A log of one partition is what earlier
/// versions wrote. Appends are fsynced before the files' offsets are offered to the engine.
struct IndexLog {
    enum Entry: Equatable {
        case file(name: String, partition: Int = 0, firstOffset: UInt64, lines: UInt64, size: Int)
        case skipped(name: String)
        case partitions(Int)

        /// The file the entry is about, if any.
        var name: String? {
            switch self {
            case .file(let name, _, _, _, _), .skipped(let name): name
            case .partitions: nil
            }
        }
    }

    static let kind = "SLUICE-FILES"
    static let name = "files.log"
    let directory: String
    let path: String

    init(directory: String) {
        self.directory = directory
        path = directory + "/" + Self.name
    }

    /// The entries so far. A torn last record (a crash mid-append: never acknowledged) is cut off the file; a
    /// damaged record, or a file in the earlier format without checksums, is an error naming the file and offset.
    func read() throws -> [Entry] {
        let bytes: [UInt8]
        do {
            guard let contents = try DurableDirectory(path: directory).read(Self.name) else { return [] }
            bytes = contents
        } catch { throw PluginError("\(error)") }
        let contents: ChecksummedLines.Contents
        switch ChecksummedLines.parse(bytes, kind: Self.kind) {
        case .success(let parsed): contents = parsed
        case .failure(let error): throw PluginError(damaged(at: error.offset, error.explanation))
        }
        var entries: [Entry] = []
        for range in contents.records {
            let text = String(decoding: bytes[range], as: UTF8.self)
            // The name comes last and may hold tabs: split no further than the fields before it.
            let tag = text.prefix { $0 != "\t" }
            let fields = text.split(separator: "\t", maxSplits: tag == "pfile" ? 5 : 4, omittingEmptySubsequences: false).map(String.init)
            if fields.count == 2, fields[0] == "skip" {
                entries.append(.skipped(name: fields[1]))
            } else if fields.count == 2, fields[0] == "partitions", let count = Int(fields[1]), count > 0 {
                entries.append(.partitions(count))
            } else if fields.count == 5, fields[0] == "file", let first = UInt64(fields[1]), let lines = UInt64(fields[2]),
                let size = Int(fields[3])
            {
                entries.append(.file(name: fields[4], firstOffset: first, lines: lines, size: size))
            } else if fields.count == 6, fields[0] == "pfile", let partition = Int(fields[1]), partition >= 0,
                let first = UInt64(fields[2]), let lines = UInt64(fields[3]), let size = Int(fields[4])
            {
                entries.append(.file(name: fields[5], partition: partition, firstOffset: first, lines: lines, size: size))
            } else {
                // The checksum matched, so this is not damage but an entry this version does not know.
                throw PluginError(damaged(at: range.lowerBound, "the entry is not one this version of sluice writes"))
            }
        }
        if contents.validEnd < bytes.count {
            // A torn last record: cut it off, so that the next append starts on a record boundary.
            guard truncate(path, off_t(contents.validEnd)) == 0 else {
                throw PluginError("cannot cut the torn end off '\(path)': \(errorText())")
            }
        }
        if contents.missingNewline { try appendDurably([10]) }
        return entries
    }

    private func damaged(at offset: Int, _ reason: String) -> String {
        "the file-watch index '\(path)' is damaged at byte \(offset): \(reason). Its offsets cannot be trusted, so the "
            + "source does not start; `sluice checkpoints reset` on the pipeline's checkpoint directory starts over "
            + "(the watched files are read again)"
    }

    /// Appends `entries` durably (writing the header first into a new or empty file).
    func append(_ entries: [Entry]) throws {
        guard !entries.isEmpty else { return }
        var bytes: [UInt8] = []
        for entry in entries {
            let text: String
            switch entry {
            case .file(let name, 0, let first, let lines, let size): text = "file\t\(first)\t\(lines)\t\(size)\t\(name)"
            case .file(let name, let partition, let first, let lines, let size):
                text = "pfile\t\(partition)\t\(first)\t\(lines)\t\(size)\t\(name)"
            case .skipped(let name): text = "skip\t\(name)"
            case .partitions(let count): text = "partitions\t\(count)"
            }
            Array(text.utf8).withUnsafeBytes { ChecksummedLines.append($0, to: &bytes) }
        }
        try appendDurably(bytes)
    }

    /// Appends `bytes` durably, after the header when the file is new or empty; a failed write is taken back. A new
    /// file's directory entry is made durable too (`DurableDirectory.sync`), or a crash could lose the whole file.
    private func appendDurably(_ records: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PluginError("cannot open '\(path)': \(errorText())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw PluginError("cannot stat '\(path)': \(errorText())") }
        let bytes = info.st_size == 0 ? ChecksummedLines.header(Self.kind) + records : records
        if let code = bytes.withUnsafeBytes({ writeFully(fd, $0) }) {
            // Take back a partial append, so that the file ends on a record boundary for the next one.
            _ = ftruncate(fd, info.st_size)
            throw PluginError("cannot append to '\(path)': \(String(cString: strerror(code)))")
        }
        guard fsync(fd) == 0 else { throw PluginError("cannot fsync '\(path)': \(errorText())") }
        if info.st_size == 0 {
            do { try DurableDirectory(path: directory).sync() } catch { throw PluginError("\(error)") }
        }
    }
}
