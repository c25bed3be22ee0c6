import Foundation

/// What the server keeps of a batch across its own restarts (`batches/<id>/batch.json`): the submission as it will
/// run, and where it stands. A batch whose recorded state is not final was running when the server stopped and is
/// started again, from its checkpoint, when the server starts.
struct BatchRecord: Codable, Sendable, Equatable {
    var id: Int
    var name: String
    /// The pipeline file the child runs: the submitted file, or `pipeline.yaml` in the batch's directory.
    var file: String
    var arguments: [String]
    var settings: [String]
    var parallelism: Int?
    var memoryLimitBytes: Int64?
    var restartOnFailure: Bool
    var submitted: Date
    var state: BatchState
    /// Why a batch is `dead` (exit status or signal, the last log lines), or what its last failure was.
    var cause: String?
    /// Restarts so far (`restart: on-failure`, and server restarts do not count).
    var restarts: Int
}

/// The batches' directory under the data directory: one directory per batch holding its record, its inline
/// pipeline, its checkpoint and its log. Records are replaced atomically (a temporary file renamed over the old).
struct BatchStore: Sendable {
    let root: URL

    init(dataDirectory: URL) throws {
        root = dataDirectory.appendingPathComponent("batches", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func directory(_ id: Int) -> URL { root.appendingPathComponent(String(id), isDirectory: true) }
    func checkpointDirectory(_ id: Int) -> URL { directory(id).appendingPathComponent("checkpoint", isDirectory: true) }
    func logFile(_ id: Int) -> URL { directory(id).appendingPathComponent("log") }

    /// Every record kept, in id order; a directory without a readable record is skipped and reported.
    func load() -> (records: [BatchRecord], problems: [String]) {
        var records: [BatchRecord] = []
        var problems: [String] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        for name in names {
            guard let id = Int(name) else { continue }
            let file = directory(id).appendingPathComponent("batch.json")
            do {
                records.append(try decoder.decode(BatchRecord.self, from: Data(contentsOf: file)))
            } catch {
                problems.append("\(file.path): \(error)")
            }
        }
        return (records.sorted { $0.id < $1.id }, problems)
    }

    /// Creates the batch's directory and writes the inline pipeline there, if any; returns the file to run.
    func prepare(_ id: Int, inlinePipeline: String?) throws -> String? {
        let directory = directory(id)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        guard let inlinePipeline else { return nil }
        let file = directory.appendingPathComponent("pipeline.yaml")
        try Data(inlinePipeline.utf8).write(to: file, options: .atomic)
        return file.path
    }

    func save(_ record: BatchRecord) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(record)
        let final = directory(record.id).appendingPathComponent("batch.json")
        let temporary = directory(record.id).appendingPathComponent(".batch.json.tmp")
        try data.write(to: temporary)
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.synchronize()
        try handle.close()
        guard rename(temporary.path, final.path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: final.path])
        }
    }

    func remove(_ id: Int) throws {
        try FileManager.default.removeItem(at: directory(id))
    }
}
