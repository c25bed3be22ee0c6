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

    @Test func aDamagedInflightRecordIsReportedNotTakenForAnAbsentOne() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path)
        #expect(store.inflightStatus() == .absent)
        let plan = InflightRecord(batch: 3, batchTimeMilliseconds: 3000, ranges: [], clock: BatchClock(segments: [.init(batch: 0, timeMilliseconds: 0, intervalMilliseconds: 1000)]))
        try store.writeInflight(plan)
        #expect(store.inflightStatus() == .intact(plan))
        let file = directory.appendingPathComponent("inflight.ckpt")
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count - 3] ^= 0x04
        try bytes.write(to: file)
        guard case .damaged(let reason) = store.inflightStatus() else {
            Issue.record("a flipped bit is not reported: \(store.inflightStatus())")
            return
        }
        #expect(reason.contains("inflight.ckpt") && reason.contains("checksum"), "\(reason)")
        #expect(store.loadInflight() == nil)
        try Data().write(to: file)
        guard case .damaged = store.inflightStatus() else {
            Issue.record("an emptied record is not reported")
            return
        }
    }

    @Test func theBatchClockGivesEachBatchTheTimeOfItsSegment() {
        var clock = BatchClock()
        #expect(clock.time(of: 0) == nil)
        clock.start(at: 0, time: 1_000, interval: 50)
        #expect(clock.time(of: 0) == 1_000 && clock.time(of: 4) == 1_200)
        // A restart after batch 9 (an hour later, a new interval): batches up to 9 keep their times.
        clock.start(at: 10, time: 3_600_000, interval: 100)
        #expect(clock.time(of: 9) == 1_450 && clock.time(of: 10) == 3_600_000 && clock.time(of: 12) == 3_600_200)
        // What a record of batch 11 keeps: the segment that covers it, not the older one.
        #expect(clock.from(11).segments.map(\.batch) == [10])
        #expect(clock.from(10).time(of: 11) == clock.time(of: 11))
        #expect(clock.from(9).segments.count == 2)
        // A start at or before an unused segment replaces it.
        clock.start(at: 10, time: 7_200_000, interval: 100)
        #expect(clock.segments.count == 2 && clock.time(of: 10) == 7_200_000)
        clock.start(at: 5, time: 9_000_000, interval: 10)
        #expect(clock.segments.map(\.batch) == [0, 5])
        #expect(clock.time(of: UInt64.max) == .max, "no overflow trap")
    }

    /// Every kept commit learns a new segment before any batch uses it, so falling back to any of them later gives a
    /// batch run again the time of its first attempt; a damaged commit is left as it is.
    @Test func theClockIsRecordedInEveryKeptCommit() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CheckpointStore(directory: directory.path)
        for batch in 0..<4 { try Self.commit(store, UInt64(batch)) }
        try Data("garbage".utf8).write(to: directory.appendingPathComponent("commit-000000000003.ckpt"))
        var clock = BatchClock()
        clock.start(at: 0, time: 0, interval: 1000)
        clock.start(at: 4, time: 1_000_000, interval: 500)
        try store.recordClock(clock)
        let loaded = try #require(try store.loadLatest())
        #expect(loaded.record.batch == 2)
        #expect(loaded.record.clock == clock.from(2))
        #expect(loaded.record.clock?.time(of: 3) == 3000 && loaded.record.clock?.time(of: 5) == 1_000_500)
        #expect(loaded.states["counts"] == Array("state of 2".utf8), "state untouched")
        #expect(try Data(contentsOf: directory.appendingPathComponent("commit-000000000003.ckpt")) == Data("garbage".utf8))
        #expect(store.highestCommitBatch() == 3, "a damaged commit still bounds the batches that may have run")
        // A record written before the clock was kept still loads (no clock).
        #expect(Self.record(7, offset: 1).clock == nil)
    }
}
