import Foundation
import SluiceHost
import Synchronization
import Testing

/// The checkpoint directory: atomic, checksummed commits; fallback past damage; never a silent fresh start.
@Suite(.serialized)
struct CheckpointStoreTests {
    static func record(_ batch: UInt64, offset: UInt64, stage: String? = "counts") -> CommitRecord {
        CommitRecord(
            pipeline: "p",
            batch: batch,
            batchTimeMilliseconds: 1000 * Int64(batch),
            positions: [.init(source: "lines", partition: 0, offset: offset)],
            state: stage.map { [.init(stage: $0, fingerprint: "reduceByKeyAndWindow(...)", file: "state/\($0)@\(batch).state")] } ?? []
        )
    }

    static func commit(_ store: CheckpointStore, _ batch: UInt64) throws {
        try store.commit(record(batch, offset: 10 * (batch + 1)), states: ["counts": Array("state of \(batch)".utf8)])
    }

    @Test func theNewestCommitLoadsWithItsStateAndOldOnesArePruned() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path, keep: 3)
        #expect(try store.loadLatest() == nil, "an empty directory is a fresh start")
        for batch in 0..<6 { try Self.commit(store, UInt64(batch)) }
        let loaded = try #require(try store.loadLatest())
        #expect(loaded.record == Self.record(5, offset: 60))
        #expect(loaded.states["counts"] == Array("state of 5".utf8))
        #expect(loaded.warnings.isEmpty)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("commit-") }
        #expect(files.count == 3, "\(files)")
        let states = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("state").path)
        #expect(Set(states) == ["counts@3.state", "counts@4.state", "counts@5.state"])
    }

    enum Damage: String, CaseIterable, Sendable { case garbled, truncated, emptied, missingState, garbledState }

    @Test(arguments: Damage.allCases)
    func aDamagedNewestCommitFallsBackToThePreviousWithAWarning(damage: Damage) throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path)
        for batch in 0..<3 { try Self.commit(store, UInt64(batch)) }
        let newest = directory.appendingPathComponent("commit-000000000002.ckpt")
        let state = directory.appendingPathComponent("state/counts@2.state")
        switch damage {
        case .garbled:
            var bytes = try Data(contentsOf: newest)
            bytes[bytes.count - 5] ^= 0x20
            try bytes.write(to: newest)
        case .truncated:
            let bytes = try Data(contentsOf: newest)
            try bytes.prefix(bytes.count / 2).write(to: newest)
        case .emptied:
            try Data().write(to: newest)
        case .missingState:
            try FileManager.default.removeItem(at: state)
        case .garbledState:
            var bytes = try Data(contentsOf: state)
            bytes[bytes.count - 1] ^= 0x01
            try bytes.write(to: state)
        }
        let loaded = try #require(try store.loadLatest())
        #expect(loaded.record.batch == 1, "fell back to the previous commit")
        #expect(loaded.states["counts"] == Array("state of 1".utf8))
        #expect(loaded.warnings.count == 1)
        #expect(loaded.warnings.first?.contains(damage == .missingState || damage == .garbledState ? "state/counts@2.state" : "commit-000000000002.ckpt") == true,
                "\(loaded.warnings)")
    }

    @Test func everyCommitDamagedRefusesToStartFromScratch() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path)
        for batch in 0..<2 { try Self.commit(store, UInt64(batch)) }
        for name in ["commit-000000000000.ckpt", "commit-000000000001.ckpt"] {
            try Data("garbage".utf8).write(to: directory.appendingPathComponent(name))
        }
        let error = #expect(throws: CheckpointError.self) { _ = try store.loadLatest() }
        #expect(error?.description.contains("no usable checkpoint") == true)
        #expect(error?.description.contains("sluice checkpoints reset") == true)
    }

    /// A file system whose writes fail (a full disk) until told otherwise.
    final class FullDisk: CheckpointFileSystem {
        let full = Atomic<Bool>(true)
        let local = LocalFileSystem()
        func writeAtomically(_ data: [UInt8], to path: String) throws {
            if full.load(ordering: .relaxed) { throw CheckpointError("cannot write \(path): No space left on device") }
            try local.writeAtomically(data, to: path)
        }
        func read(_ path: String) -> [UInt8]? { local.read(path) }
        func list(_ directory: String) -> [String] { local.list(directory) }
        func remove(_ path: String) { local.remove(path) }
        func makeDirectory(_ path: String) throws { try local.makeDirectory(path) }
    }

    @Test func aFailedWriteLosesNothingCommittedAndTheNextOneSucceeds() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let disk = FullDisk()
        disk.full.store(false, ordering: .relaxed)
        let store = try CheckpointStore(directory: directory.path, fileSystem: disk)
        try Self.commit(store, 0)
        disk.full.store(true, ordering: .relaxed)
        let error = #expect(throws: CheckpointError.self) { try Self.commit(store, 1) }
        #expect(error?.description.contains("No space left on device") == true)
        #expect(try store.loadLatest()?.record.batch == 0, "the committed batch is intact")
        disk.full.store(false, ordering: .relaxed)
        try Self.commit(store, 1)
        #expect(try store.loadLatest()?.record.batch == 1)
    }

    @Test func theInflightPlanRoundTripsAndOneProcessHoldsTheDirectory() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path)
        #expect(store.loadInflight() == nil)
        let plan = InflightRecord(batch: 7, batchTimeMilliseconds: 70, ranges: [.init(source: "lines", partition: 0, from: 3, to: 9)])
        try store.writeInflight(plan)
        #expect(store.loadInflight() == plan)
        let error = #expect(throws: CheckpointError.self) { _ = try CheckpointStore(directory: directory.path) }
        #expect(error?.description.contains("in use by another sluice process") == true)
    }
}
