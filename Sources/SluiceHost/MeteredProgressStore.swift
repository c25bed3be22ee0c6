import CoreMetrics
import Synchronization

/// A `ProgressStore` that records what checkpointing costs (`docs/metrics.md`): how long each commit takes, how large
/// each stage's saved state is, and every write that failed (and is retried by the scheduler). It wraps the store the
/// scheduler uses, so the scheduler and the stores stay free of metrics; it changes nothing it passes on.
public final class MeteredProgressStore: ProgressStore, Sendable {
    public let store: any ProgressStore
    private let pipeline: String
    private let factory: any MetricsFactory
    private let commitTime: CoreMetrics.Timer
    private let stateBytesWritten: Counter
    private let writeFailures: Counter
    /// One gauge per stateful stage, made at its first commit (stages are fixed by the pipeline's definition).
    private let stageBytes = Mutex<[String: Gauge]>([:])

    /// - Parameter factory: the backend; the one the process bootstrapped by default.
    public init(_ store: any ProgressStore, pipeline: String, factory: any MetricsFactory = MetricsSystem.factory) {
        self.store = store
        self.pipeline = pipeline
        self.factory = factory
        let labels = [("pipeline", pipeline)]
        commitTime = CoreMetrics.Timer(
            label: "sluice_checkpoint_commit_seconds", dimensions: labels, preferredDisplayUnit: .seconds, factory: factory
        )
        stateBytesWritten = Counter(label: "sluice_checkpoint_state_written_bytes_total", dimensions: labels, factory: factory)
        writeFailures = Counter(label: "sluice_checkpoint_write_failures_total", dimensions: labels, factory: factory)
    }

    public var location: String { store.location }
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
            gauge(stage: snapshot.stage).record(snapshot.bytes.count)
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

    private func gauge(stage: String) -> Gauge {
        stageBytes.withLock { made in
            if let gauge = made[stage] { return gauge }
            let gauge = Gauge(
                label: "sluice_checkpoint_state_bytes", dimensions: [("pipeline", pipeline), ("stage", stage)], factory: factory
            )
            made[stage] = gauge
            return gauge
        }
    }
}
