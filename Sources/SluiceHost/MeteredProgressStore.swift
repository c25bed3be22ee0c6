import CoreMetrics

/// A `ProgressStore` that records what checkpointing costs (`docs/metrics.md`): how long each commit takes, how large
/// each stage's saved state is, and every write that failed (and is retried by the scheduler). It wraps the store the
/// scheduler uses, so the scheduler and the stores stay free of metrics; it changes nothing it passes on.
public final class MeteredProgressStore: ProgressStore, Sendable {
    public let store: any ProgressStore
    private let pipeline: String
    /// Its metrics; a stage's gauge is made at the stage's first commit (stages are fixed by the pipeline's definition).
    private let handles: MetricHandles
    private let commitTime: CoreMetrics.Timer
    private let stateBytesWritten: Counter
    private let writeFailures: Counter

    /// - Parameter factory: the backend; the one the process bootstrapped by default.
    public init(_ store: any ProgressStore, pipeline: String, factory: any MetricsFactory = MetricsSystem.factory) {
        self.store = store
        self.pipeline = pipeline
        handles = MetricHandles(factory: factory)
        let labels = [("pipeline", pipeline)]
        commitTime = handles.timer("sluice_checkpoint_commit_seconds", labels)
        stateBytesWritten = handles.counter("sluice_checkpoint_state_written_bytes_total", labels)
        writeFailures = handles.counter("sluice_checkpoint_write_failures_total", labels)
    }

    public var location: String { store.location }
    public var keepsDeltas: Bool { store.keepsDeltas }
    public func loadLatest() throws -> LoadedCommit? { try store.loadLatest() }
    public func inflightStatus() -> InflightStatus { store.inflightStatus() }
    public func highestCommitBatch() -> UInt64? { store.highestCommitBatch() }
    public func sourceDirectory(_ name: String) throws -> String? { try store.sourceDirectory(name) }
    public func acquireLease(owner: String) throws -> ProgressLease { try store.acquireLease(owner: owner) }

    public func writeInflight(_ record: InflightRecord) throws {
        try counted { try store.writeInflight(record) }
    }

    public func recordClock(_ clock: BatchClock) throws {
        try counted { try store.recordClock(clock) }
    }

    /// Only a commit that succeeded is timed: a failed attempt's time is the failure's, and the retry is timed anew.
    public func commit(_ record: CommitRecord, snapshots: [StageSnapshot], lease: ProgressLease) throws {
        let clock = ContinuousClock()
        let began = clock.now
        try counted { try store.commit(record, snapshots: snapshots, lease: lease) }
        let elapsed = clock.now - began
        commitTime.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        var written = 0
        for snapshot in snapshots {
            written += snapshot.bytes.count
            handles.gauge("sluice_checkpoint_state_bytes", [("pipeline", pipeline), ("stage", snapshot.stage)])
                .record(snapshot.bytes.count)
        }
        stateBytesWritten.increment(by: written)
    }

    private func counted(_ write: () throws -> Void) throws {
        do {
            try write()
        } catch {
            writeFailures.increment()
            throw error
        }
    }
}
