import Foundation
import SluiceHost
import Testing

/// The directory store with deltas: the commit record lists each stage's chain (a whole snapshot and the deltas
/// after it), loading returns the chain, pruning keeps every file of a kept commit's chain, and a damaged, missing
/// or misplaced delta makes its commit (and every later one of its chain) unusable, never a wrong state.
@Suite(.serialized)
struct DeltaCheckpointStoreTests {
    static let lease = ProgressLease(owner: "test", token: 1)

    static func record(_ batch: UInt64) -> CommitRecord {
        CommitRecord(pipeline: "p", batch: batch, batchTimeMilliseconds: 1000 * Int64(batch), positions: [.init(source: "lines", partition: 0, offset: batch + 1)], state: [])
    }

    /// Commits `batch` with stage `totals` saved whole (`delta` false) or as a delta over the batch before.
    static func commit(_ store: CheckpointStore, _ batch: UInt64, delta: Bool) throws {
        let bytes = Array("\(delta ? "delta" : "whole") \(batch)".utf8)
        let snapshot = StageSnapshot(stage: "totals", fingerprint: "updateStateByKey(sum)", bytes: bytes, base: delta ? batch - 1 : nil)
        try store.commit(record(batch), snapshots: [snapshot], lease: lease)
    }

    static func stateFiles(_ directory: URL) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("state").path))
    }

    @Test func aChainLoadsInOrderAndPruningKeepsEveryFileAKeptCommitNeeds() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path, keep: 3)
        #expect(store.keepsDeltas)
        try Self.commit(store, 0, delta: false)
        for batch in 1...5 { try Self.commit(store, UInt64(batch), delta: true) }
        let loaded = try #require(try store.loadLatest())
        #expect(loaded.record.batch == 5)
        #expect(loaded.states["totals"] == Array("whole 0".utf8))
        #expect(loaded.deltas["totals"] == (1...5).map { Array("delta \($0)".utf8) })
        let entry = try #require(loaded.record.state.first)
        #expect(entry.file == "state/totals@0.state")
        #expect(entry.deltas?.map(\.batch) == [1, 2, 3, 4, 5] && entry.deltas?.map(\.base) == [0, 1, 2, 3, 4])
        // Commits 3, 4 and 5 are kept; the oldest of them still needs the base of batch 0 and the deltas 1...3.
        #expect(try Self.stateFiles(directory) == Set(["totals@0.state"] + (1...5).map { "totals@\($0).delta" }))

        // A whole snapshot starts a new chain; once no kept commit needs the old one, its files go.
        try Self.commit(store, 6, delta: false)
        try Self.commit(store, 7, delta: true)
        #expect(try Self.stateFiles(directory).contains("totals@0.state"), "commit 5, still kept, needs it")
        try Self.commit(store, 8, delta: true)
        #expect(try Self.stateFiles(directory) == ["totals@6.state", "totals@7.delta", "totals@8.delta"])
        let last = try #require(try store.loadLatest())
        #expect(last.states["totals"] == Array("whole 6".utf8) && last.deltas["totals"]?.count == 2)
    }

    enum Damage: String, CaseIterable, Sendable { case garbled, missing, swapped }

    /// A damaged delta makes its commit and every later one of the chain unusable: the store falls back to the
    /// newest commit whose whole chain is intact, and says which file was wrong.
    @Test(arguments: Damage.allCases)
    func aDamagedDeltaFallsBackToTheCommitBeforeIt(damage: Damage) throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path, keep: 4)
        try Self.commit(store, 0, delta: false)
        for batch in 1...3 { try Self.commit(store, UInt64(batch), delta: true) }
        let second = directory.appendingPathComponent("state/totals@2.delta")
        switch damage {
        case .garbled:
            var bytes = try Data(contentsOf: second)
            bytes[bytes.count - 1] ^= 0x01
            try bytes.write(to: second)
        case .missing:
            try FileManager.default.removeItem(at: second)
        case .swapped:
            // An intact delta file, but of another link of the chain: its checksum holds, its batches do not.
            try FileManager.default.removeItem(at: second)
            try FileManager.default.copyItem(at: directory.appendingPathComponent("state/totals@1.delta"), to: second)
        }
        let loaded = try #require(try store.loadLatest())
        #expect(loaded.record.batch == 1, "commits 3 and 2 need delta 2")
        #expect(loaded.deltas["totals"] == [Array("delta 1".utf8)])
        #expect(loaded.warnings.count == 2)
        #expect(loaded.warnings.allSatisfy { $0.contains("state/totals@2.delta") }, "\(loaded.warnings)")
        if damage == .swapped {
            #expect(loaded.warnings.first?.contains("written again since this commit") == true, "\(loaded.warnings)")
        }
    }

    /// When the base of every kept commit is damaged there is nothing to start from: the store refuses.
    @Test func aDamagedBaseLeavesNoUsableCommit() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path, keep: 3)
        try Self.commit(store, 0, delta: false)
        for batch in 1...4 { try Self.commit(store, UInt64(batch), delta: true) }
        try Data("garbage".utf8).write(to: directory.appendingPathComponent("state/totals@0.state"))
        let error = #expect(throws: CheckpointError.self) { try store.loadLatest() }
        #expect(error?.description.contains("state/totals@0.state") == true, "\(String(describing: error))")
    }

    /// A delta over a commit that is not there (or that holds no state of the stage) is refused before anything is
    /// written: the commit it would have made could never be loaded.
    @Test func aDeltaWithoutItsBaseIsRefused() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path)
        try Self.commit(store, 0, delta: false)
        let error = #expect(throws: CheckpointError.self) { try Self.commit(store, 2, delta: true) }
        #expect(error?.description.contains("stage 'totals'") == true && error?.description.contains("batch 1") == true, "\(String(describing: error))")
        let other = StageSnapshot(stage: "totals", fingerprint: "updateStateByKey(max)", bytes: [1], base: 0)
        #expect(throws: CheckpointError.self) { try store.commit(Self.record(1), snapshots: [other], lease: Self.lease) }
        #expect(try store.loadLatest()?.record.batch == 0)
        #expect(try Self.stateFiles(directory) == ["totals@0.state"])
    }

    /// A record without deltas is written exactly as before deltas existed, so older records load and older Sluice
    /// versions read the new whole-snapshot records.
    @Test func aRecordWithoutDeltasKeepsTheOlderFormat() throws {
        let whole = CommitRecord.State(stage: "totals", fingerprint: "f", file: "state/totals@0.state")
        let json = String(decoding: try JSONEncoder().encode(whole), as: UTF8.self)
        #expect(!json.contains("deltas"))
        let older = #"{"stage":"totals","fingerprint":"f","file":"state/totals@0.state"}"#
        #expect(try JSONDecoder().decode(CommitRecord.State.self, from: Data(older.utf8)) == whole)
    }
}

extension DeltaCheckpointStoreTests {
    /// Batch 1 committed again with other content (a run after a fallback that read other ranges): commit 2, whose
    /// chain named the first content of delta 1, is refused rather than restored from a mix of the two runs.
    @Test func aCommitRefusesAFileWrittenAgainSince() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path, keep: 3)
        try Self.commit(store, 0, delta: false)
        for batch in 1...2 { try Self.commit(store, UInt64(batch), delta: true) }
        let again = StageSnapshot(stage: "totals", fingerprint: "updateStateByKey(sum)", bytes: Array("another delta 1".utf8), base: 0)
        try store.commit(Self.record(1), snapshots: [again], lease: Self.lease)
        let loaded = try #require(try store.loadLatest())
        #expect(loaded.record.batch == 1)
        #expect(loaded.deltas["totals"] == [Array("another delta 1".utf8)])
        #expect(loaded.warnings.count == 1 && loaded.warnings.first?.contains("state/totals@1.delta was written again") == true, "\(loaded.warnings)")
    }
}
