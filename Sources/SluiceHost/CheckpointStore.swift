import DurableRecords
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The file operations a checkpoint store needs; tests substitute one that fails (a full disk).
public protocol CheckpointFileSystem: Sendable {
    /// Writes `data` to `path` atomically and durably: a temporary file, fsync, rename, fsync of the directory.
    func writeAtomically(_ data: [UInt8], to path: String) throws
    func read(_ path: String) -> [UInt8]?
    func list(_ directory: String) -> [String]
    func remove(_ path: String)
    func makeDirectory(_ path: String) throws
}

/// The real file system.
public struct LocalFileSystem: CheckpointFileSystem {
    public init() {}

    /// Through `DurableDirectory`, the one atomic-write helper the sources and the files sink use too: a hidden,
    /// unpredictable temporary created with `O_EXCL | O_NOFOLLOW`, write, fsync, rename, fsync of the directory.
    public func writeAtomically(_ data: [UInt8], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try DurableDirectory(path: directory.isEmpty ? "." : directory)
                .writeAtomically(data, to: (path as NSString).lastPathComponent)
        } catch {
            throw CheckpointError(error.description)
        }
    }

    public func read(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }
    public func list(_ directory: String) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] }
    public func remove(_ path: String) { unlink(path) }
    public func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
}

/// A pipeline's checkpoint directory, the local `ProgressStore`:
///
///     DIR/commit-<batch>.ckpt          the last `keep` commit records (progress store + state references)
///     DIR/state/<stage>@<batch>.state  operator state saved with a commit
///     DIR/state/<stage>@<batch>.delta  the changes of a stage's state at a commit over the commit before
///     DIR/inflight.ckpt                the batch planned but not committed
///     DIR/sources/<source>/            each source's own directory (write-ahead logs, file indexes)
///
/// Every file starts with a header line — `SLUICE-CHECKPOINT 1 <kind> <length> <fnv1a-64 of the payload>` — so a
/// truncated or garbled file is detected, and is written atomically. Loading falls back to the previous commit
/// (with a warning) when the newest is damaged, and refuses to start from scratch when every one is.
public final class CheckpointStore: ProgressStore, @unchecked Sendable {  // used from the scheduling thread only
    public let directory: String
    public var location: String { directory }
    public let keep: Int
    let fileSystem: any CheckpointFileSystem

    public init(directory: String, keep: Int = 3, fileSystem: any CheckpointFileSystem = LocalFileSystem()) throws {
        self.directory = directory
        self.keep = max(2, keep)
        self.fileSystem = fileSystem
        do {
            try fileSystem.makeDirectory(directory + "/state")
            try fileSystem.makeDirectory(directory + "/sources")
        } catch {
            throw CheckpointError("cannot use checkpoint directory \(directory): \(error)")
        }
        // One process at a time: a second sluice on the same directory would interleave commits. The lock is the
        // kernel's, so it goes away with the process however it ends.
        lockFD = open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw CheckpointError("cannot create \(directory)/lock: \(String(cString: strerror(errno)))") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            let holder = fileSystem.read(directory + "/lock").map { String(decoding: $0, as: UTF8.self) } ?? ""
            close(lockFD)
            throw CheckpointError(
                "checkpoint directory \(directory) is in use by another sluice process\(holder.isEmpty ? "" : " (pid \(holder))")"
            )
        }
        _ = ftruncate(lockFD, 0)
        let pid = Array(String(getpid()).utf8)
        _ = pid.withUnsafeBytes { write(lockFD, $0.baseAddress, $0.count) }
    }

    private var lockFD: Int32 = -1

    deinit {
        if lockFD >= 0 { close(lockFD) }
    }

    /// The directory of source `name`'s own files (created).
    public func sourceDirectory(_ name: String) throws -> String? {
        let path = directory + "/sources/" + name
        try fileSystem.makeDirectory(path)
        return path
    }

    // MARK: File format

    static let magic = "SLUICE-CHECKPOINT 1"

    static func checksum(_ bytes: some Collection<UInt8>) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return String(hash, radix: 16)
    }

    /// `checksum`: the payload's, when the caller has it already (it is a pass over every byte).
    static func encode(_ payload: [UInt8], kind: String, checksum known: String? = nil) -> [UInt8] {
        Array("\(magic) \(kind) \(payload.count) \(known ?? checksum(payload))\n".utf8) + payload
    }

    /// The payload of a checkpoint file of `kind`, or why it cannot be used.
    static func decode(_ data: [UInt8], kind: String) -> Result<[UInt8], CheckpointError> {
        guard let newline = data.firstIndex(of: 10) else { return .failure(CheckpointError("no header line (truncated?)")) }
        let header = String(decoding: data[..<newline], as: UTF8.self).split(separator: " ").map(String.init)
        guard header.count == 5, "\(header[0]) \(header[1])" == magic else {
            return .failure(CheckpointError("not a Sluice checkpoint file (bad header)"))
        }
        guard header[2] == kind else { return .failure(CheckpointError("a \(header[2]) file where a \(kind) was expected")) }
        let payload = Array(data[(newline + 1)...])
        guard Int(header[3]) == payload.count else {
            return .failure(CheckpointError("truncated: \(payload.count) of \(header[3]) bytes"))
        }
        guard checksum(payload) == header[4] else { return .failure(CheckpointError("checksum mismatch (the file is damaged)")) }
        return .success(payload)
    }

    func path(_ name: String) -> String { directory + "/" + name }
    static func commitName(_ batch: UInt64) -> String { "commit-\(String(batch).leftPadded(to: 12)).ckpt" }
    static func stateName(_ stage: String, _ batch: UInt64) -> String { "state/\(stage)@\(batch).state" }
    static func deltaName(_ stage: String, _ batch: UInt64) -> String { "state/\(stage)@\(batch).delta" }

    // MARK: Loading

    public typealias Loaded = LoadedCommit

    /// The commit records present, newest first.
    func commitFiles() -> [String] {
        fileSystem.list(directory).filter { $0.hasPrefix("commit-") && $0.hasSuffix(".ckpt") }.sorted(by: >)
    }

    /// The newest commit whose record and state files are intact, or nil when the directory has none. Throws when
    /// commits exist but none can be used: the pipeline must not silently start from scratch.
    public func loadLatest() throws -> Loaded? {
        let files = commitFiles()
        guard !files.isEmpty else { return nil }
        var warnings: [String] = []
        for file in files {
            switch load(file) {
            case .success(var loaded):
                loaded.warnings = warnings
                return loaded
            case .failure(let error):
                warnings.append("\(path(file)): \(error.description)")
            }
        }
        throw CheckpointError(
            "no usable checkpoint in \(directory): " + warnings.joined(separator: "; ")
                + ". Nothing was started; to start from scratch deliberately, run: sluice checkpoints reset \(directory)"
        )
    }

    func load(_ file: String) -> Result<Loaded, CheckpointError> {
        guard let data = fileSystem.read(path(file)) else { return .failure(CheckpointError("cannot be read")) }
        if case .failure(let error) = Self.decode(data, kind: "commit") { return .failure(error) }
        guard let record = record(of: file) else { return .failure(CheckpointError("the commit record is not valid")) }
        var states: [String: [UInt8]] = [:]
        var deltas: [String: [[UInt8]]] = [:]
        for entry in record.state {
            switch readPayload(entry.file, kind: "state", checksum: entry.checksum) {
            case .failure(let error): return .failure(error)
            case .success(let payload): states[entry.stage] = payload
            }
            var previous: UInt64?
            for delta in entry.deltas ?? [] {
                let file = path(delta.file)
                if let previous, delta.base != previous {
                    return .failure(CheckpointError("its delta \(file) applies on batch \(delta.base), not on \(previous) before it"))
                }
                switch readPayload(delta.file, kind: "delta", checksum: delta.checksum) {
                case .failure(let error): return .failure(error)
                case .success(let payload): deltas[entry.stage, default: []].append(payload)
                }
                previous = delta.batch
            }
        }
        return .success(Loaded(record: record, states: states, deltas: deltas, warnings: []))
    }

    /// The payload of state file `file` (relative to the directory) of `kind`, or what is wrong with it. With
    /// `checksum` (what the commit recorded), a file written again since — a batch run again after a fallback, then a
    /// crash before its commit record — is refused: it may hold another state than the one this commit saved.
    private func readPayload(_ file: String, kind: String, checksum: String?) -> Result<[UInt8], CheckpointError> {
        let what = kind == "delta" ? "delta file" : "state file"
        guard let data = fileSystem.read(path(file)) else { return .failure(CheckpointError("its \(what) \(path(file)) is missing")) }
        switch Self.decode(data, kind: kind) {
        case .failure(let error): return .failure(CheckpointError("its \(what) \(path(file)): \(error.description)"))
        case .success(let payload):
            // decode checked the header's checksum against the payload; the header's is the one to compare.
            let header = data.firstIndex(of: 10).map { String(decoding: data[..<$0], as: UTF8.self) } ?? ""
            if let checksum, header.split(separator: " ").last.map(String.init) != checksum {
                return .failure(CheckpointError("its \(what) \(path(file)) was written again since this commit (its checksum is not the recorded one)"))
            }
            return .success(payload)
        }
    }

    /// The planned batch, if one was recorded and is intact.
    public func loadInflight() -> InflightRecord? {
        if case .intact(let record) = inflightStatus() { return record }
        return nil
    }

    /// The in-flight record, or why it cannot be used. A damaged one is never silently taken for an absent one: the
    /// runner warns, and falls back to the batch clock of the commits for the batches it may have named.
    public func inflightStatus() -> InflightStatus {
        let file = path("inflight.ckpt")
        guard let data = fileSystem.read(file) else {
            return fileSystem.list(directory).contains("inflight.ckpt") ? .damaged("\(file): cannot be read") : .absent
        }
        switch Self.decode(data, kind: "inflight") {
        case .failure(let error): return .damaged("\(file): \(error.description)")
        case .success(let payload):
            guard let record = try? JSONDecoder().decode(InflightRecord.self, from: Data(payload)) else {
                return .damaged("\(file): the in-flight record is not valid")
            }
            return .intact(record)
        }
    }

    /// The highest batch id of any commit file present, usable or damaged: no batch above it + 1 was ever planned
    /// (a batch is planned only after the one before it committed), whatever the records say.
    public func highestCommitBatch() -> UInt64? {
        commitFiles().compactMap { UInt64($0.dropFirst("commit-".count).dropLast(".ckpt".count)) }.max()
    }

    // MARK: Writing

    static func json(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array((try? encoder.encode(value)) ?? Data())
    }

    /// Records the batch about to run. Must be durable before the batch reads anything.
    public func writeInflight(_ record: InflightRecord) throws {
        try fileSystem.writeAtomically(Self.encode(Self.json(record), kind: "inflight"), to: path("inflight.ckpt"))
    }

    /// Commits a batch: its state files first, then the commit record (the atomic point), then drops what is older
    /// than the last `keep` commits.
    public func commit(_ record: CommitRecord, states: [String: [UInt8]]) throws {
        for entry in record.state {
            guard let bytes = states[entry.stage] else { continue }
            try fileSystem.writeAtomically(Self.encode(bytes, kind: "state"), to: path(entry.file))
        }
        try fileSystem.writeAtomically(Self.encode(Self.json(record), kind: "commit"), to: path(Self.commitName(record.batch)))
        prune()
    }

    /// Commits a batch under `lease`: a whole snapshot goes to `state/<stage>@<batch>.state`, a delta to
    /// `state/<stage>@<batch>.delta`, added to the chain the commit of its base batch records for the stage.
    public func commit(_ record: CommitRecord, snapshots: [StageSnapshot], lease: ProgressLease) throws {
        guard lease.token == Self.leaseToken else {
            throw LeaseLost("\(directory): the lease of \(lease.owner) (token \(lease.token)) is not this directory's")
        }
        var record = record
        var bases: [UInt64: CommitRecord] = [:]
        var entries: [CommitRecord.State] = []
        for snapshot in snapshots {
            guard let base = snapshot.base else {
                let entry = CommitRecord.State(
                    stage: snapshot.stage, fingerprint: snapshot.fingerprint, file: Self.stateName(snapshot.stage, record.batch),
                    checksum: Self.checksum(snapshot.bytes)
                )
                try fileSystem.writeAtomically(Self.encode(snapshot.bytes, kind: "state", checksum: entry.checksum), to: path(entry.file))
                entries.append(entry)
                continue
            }
            // The chain goes on from the one the base commit recorded for the stage, which must be there, intact.
            if bases[base] == nil { bases[base] = self.record(of: Self.commitName(base)) }
            guard base < record.batch, let previous = bases[base],
                var entry = previous.state.first(where: { $0.stage == snapshot.stage }), entry.fingerprint == snapshot.fingerprint
            else {
                throw CheckpointError(
                    "stage '\(snapshot.stage)': a delta of batch \(record.batch) over batch \(base), but \(path(Self.commitName(base))) "
                        + "holds no intact state of the stage as \(snapshot.fingerprint)"
                )
            }
            // The record pins the file's content by its checksum: a file of another attempt at the batch is refused.
            let delta = CommitRecord.Delta(
                batch: record.batch, base: base, file: Self.deltaName(snapshot.stage, record.batch), checksum: Self.checksum(snapshot.bytes)
            )
            try fileSystem.writeAtomically(Self.encode(snapshot.bytes, kind: "delta", checksum: delta.checksum), to: path(delta.file))
            entry.deltas = (entry.deltas ?? []) + [delta]
            entries.append(entry)
        }
        record.state = entries
        try commit(record, states: [:])
    }

    public var keepsDeltas: Bool { true }

    /// The directory's lock (taken when the store opened) already makes this process the only owner of every
    /// partition for as long as it runs: one lease, one token.
    static let leaseToken: UInt64 = 1

    public func acquireLease(owner: String) throws -> ProgressLease {
        ProgressLease(owner: owner, token: Self.leaseToken)
    }

    /// Writes `clock` into every kept commit record that can be read (each keeps the segments from its own batch on),
    /// before any batch is planned with a new segment: whichever commit a later start falls back to then gives every
    /// batch after it the time it was first run with. Damaged records are left alone (they are never loaded).
    public func recordClock(_ clock: BatchClock) throws {
        for file in commitFiles().prefix(keep) {
            guard var record = record(of: file) else { continue }
            let trimmed = clock.from(record.batch)
            guard record.clock != trimmed else { continue }
            record.clock = trimmed
            try fileSystem.writeAtomically(Self.encode(Self.json(record), kind: "commit"), to: path(file))
        }
    }

    /// Removes commit records beyond the newest `keep`, and state files no kept commit references.
    func prune() {
        let files = commitFiles()
        for old in files.dropFirst(keep) { fileSystem.remove(path(old)) }
        let records = files.prefix(keep).compactMap(record(of:))
        // When no kept commit can be read, keep every state file: damage must never cost the state of a good one.
        guard !records.isEmpty else { return }
        // A kept commit needs its base and every delta of its chain, however old their batches.
        let referenced = Set(records.flatMap { $0.state.flatMap { [$0.file] + ($0.deltas ?? []).map(\.file) } })
        for name in fileSystem.list(path("state"))
        where (name.hasSuffix(".state") || name.hasSuffix(".delta")) && !referenced.contains("state/" + name) {
            fileSystem.remove(path("state/" + name))
        }
        // Temporary files of writes a killed process never finished (this process holds the lock: none are live).
        let mine = ".tmp-\(getpid())"
        for folder in ["", "state/"] {
            for name in fileSystem.list(path(folder.isEmpty ? "." : folder)) where name.contains(".tmp-") && !name.hasSuffix(mine) {
                fileSystem.remove(path(folder + name))
            }
        }
    }

    /// The commit record in `file` alone (its state files are not read), or nil when it is damaged.
    func record(of file: String) -> CommitRecord? {
        guard let data = fileSystem.read(path(file)), case .success(let payload) = Self.decode(data, kind: "commit") else {
            return nil
        }
        return try? JSONDecoder().decode(CommitRecord.self, from: Data(payload))
    }

    /// One line per kept commit, newest first: its batch and whether it can be used.
    public func describeCommits() -> [String] {
        commitFiles().map { file in
            switch load(file) {
            case .success(let loaded): "\(file): batch \(loaded.record.batch), ok"
            case .failure(let error): "\(file): damaged: \(error.description)"
            }
        }
    }

    /// Forgets the batch in flight (after a position was set by hand, it no longer follows the last commit).
    public func dropInflight() { fileSystem.remove(path("inflight.ckpt")) }

    /// Removes every commit, state file and the in-flight record (keeping the sources' directories unless asked).
    public func reset(sources: Bool) {
        for file in commitFiles() { fileSystem.remove(path(file)) }
        for name in fileSystem.list(path("state")) { fileSystem.remove(path("state/" + name)) }
        fileSystem.remove(path("inflight.ckpt"))
        if sources { try? FileManager.default.removeItem(atPath: path("sources")) }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
