import Logging
import SluiceCore
import SluiceHost
import SluiceSDK
import Synchronization

/// A `ProgressStore` in memory, for the scheduler's unit tests: what survives a "crash" is exactly what it holds.
/// Its lease can be revoked (another owner took the partitions), and its writes made to fail a number of times.
final class InMemoryProgressStore: ProgressStore, Sendable {
    struct Contents {
        var commits: [CommitRecord] = []
        var states: [UInt64: [String: [UInt8]]] = [:]
        var inflight: InflightStatus = .absent
        var token: UInt64 = 0
        var failingWrites = 0
    }
    struct WriteFailed: Error {}

    let contents = Mutex(Contents())
    var location: String { "memory" }

    func loadLatest() throws -> LoadedCommit? {
        contents.withLock { c in c.commits.last.map { LoadedCommit(record: $0, states: c.states[$0.batch] ?? [:]) } }
    }
    func inflightStatus() -> InflightStatus { contents.withLock { $0.inflight } }
    func highestCommitBatch() -> UInt64? { contents.withLock { $0.commits.last?.batch } }

    func writeInflight(_ record: InflightRecord) throws {
        try contents.withLock { c in
            try Self.failIfAsked(&c)
            c.inflight = .intact(record)
        }
    }

    func commit(_ record: CommitRecord, snapshots: [StageSnapshot], lease: ProgressLease) throws {
        try contents.withLock { c in
            guard lease.token == c.token else { throw LeaseLost("token \(lease.token) is stale; the store is at \(c.token)") }
            try Self.failIfAsked(&c)
            var record = record
            record.state = snapshots.map { .init(stage: $0.stage, fingerprint: $0.fingerprint, file: "\($0.stage)@\(record.batch)") }
            c.commits.append(record)
            c.states[record.batch] = Dictionary(snapshots.map { ($0.stage, $0.bytes) }, uniquingKeysWith: { a, _ in a })
        }
    }

    func recordClock(_ clock: BatchClock) throws {
        contents.withLock { c in
            for i in c.commits.indices { c.commits[i].clock = clock.from(c.commits[i].batch) }
        }
    }

    func sourceDirectory(_ name: String) throws -> String? { nil }

    func acquireLease(owner: String) throws -> ProgressLease {
        contents.withLock { c in
            c.token += 1
            return ProgressLease(owner: owner, token: c.token)
        }
    }

    /// Another owner takes the partitions: every lease given before is stale.
    func revokeLeases() { contents.withLock { $0.token += 1 } }

    private static func failIfAsked(_ c: inout Contents) throws {
        if c.failingWrites > 0 {
            c.failingWrites -= 1
            throw WriteFailed()
        }
    }
}

/// One partition of fixed lines (an upstream that can replay any range).
final class FixedLines: BatchSource {
    let lines: [String]
    let acknowledged = Mutex<UInt64>(0)
    init(_ lines: [String]) { self.lines = lines }
    func partitionCount() throws -> Int { 1 }
    func available(partition: Int) throws -> Range<UInt64> { 0..<UInt64(lines.count) }
    func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
        var builder = BatchBuilder()
        for i in offsets { builder.append(lines[Int(i)]) }
        return OwnedBatch(builder)
    }
    func commit(partition: Int, upTo offset: UInt64) throws { acknowledged.withLock { $0 = offset } }
}

/// An idempotent sink (a batch written again replaces the first attempt), remembering every attempt's id and time:
/// the external system that outlives a crash.
final class BatchLog: BatchSink {
    struct Contents {
        var batches: [UInt64: [String]] = [:]
        var pending: [String] = []
        var attempts: [(id: UInt64, time: Int64)] = []
    }
    let contents = Mutex(Contents())
    func begin(_ info: BatchInfo) throws {
        contents.withLock {
            $0.pending = []
            $0.attempts.append((info.id, info.timeMilliseconds))
        }
    }
    func write(_ chunk: OwnedBatch) throws {
        let view = chunk.view
        contents.withLock { c in for i in 0..<view.count { c.pending.append(view.displayString(at: i)) } }
    }
    func commit(_ info: BatchInfo) throws { contents.withLock { $0.batches[info.id] = $0.pending } }
    var batches: [UInt64: [String]] { contents.withLock { $0.batches } }
    /// Every batch id's attempts had one time (a replay kept its identity).
    var timesAreStable: Bool {
        contents.withLock { Dictionary(grouping: $0.attempts, by: \.id).values.allSatisfy { Set($0.map(\.time)).count == 1 } }
    }
}

/// Collects a scheduler's batch events.
final class RecordingListener: BatchListener {
    enum Event: Equatable { case started(BatchStarted), completed(UInt64, records: Int, ranges: [SourceRange]), failed(UInt64) }
    let events = Mutex<[Event]>([])
    func batchStarted(_ event: BatchStarted) { events.withLock { $0.append(.started(event)) } }
    func batchCompleted(_ event: BatchCompleted) { events.withLock { $0.append(.completed(event.id, records: event.records, ranges: event.ranges)) } }
    func batchFailed(_ event: BatchFailed) { events.withLock { $0.append(.failed(event.id)) } }
}

/// What a scheduler said, as `level: message` for warnings and errors and the message alone otherwise.
final class Notices: Sendable {
    let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "scheduler") { label in
            SluiceLogHandler(label: label, format: .text, level: .trace) { [self] line in
                // The text form: "TIMESTAMP sluice: [warning: |error: ]message\n".
                let said = line.split(separator: " ", maxSplits: 2)[2].dropLast()
                lines.withLock { $0.append(String(said)) }
            }
        }
    }
}

/// A thrown "crash": the scheduler stops where it is, leaving the store as SIGKILL would.
struct Crash: Error {}

/// A pipeline with state: lines → a two-batch window of counts by value → `counts`, and the lines → `lines`. Each
/// call builds fresh stages, as a new process would.
enum WindowedCounts {
    static let lines = (0..<18).map { ["a", "b", "a c", "c", "b", "a"][$0 % 6] + " \($0 % 4)" }

    static func graph(source: FixedLines, counts: BatchLog, lines: BatchLog) -> StreamGraph {
        var graph = StreamGraph()
        let input = graph.add("lines", .source(source, maxRecordsPerPartition: 3))
        let window = graph.add(
            "window", .keyed(KeyedStage(KeyedOperator(.countByValueAndWindow, window: 2, slide: 1), partitions: 2), inputs: [input])
        )
        graph.addSink(.init(name: "counts", sink: counts, input: window))
        graph.addSink(.init(name: "all", sink: lines, input: input))
        return graph
    }

    static func scheduler(
        store: (any ProgressStore)?, counts: BatchLog, lines: BatchLog, batches: Int? = 6,
        listeners: [any BatchListener] = [], notices: Notices? = nil,
        crashAt: (CommitCycle.Phase, UInt64)? = nil
    ) -> PipelineScheduler {
        var options = SchedulerOptions(pipeline: "windowed", batchIntervalMilliseconds: 1)
        options.maxBatches = batches
        options.parallelism = 2
        options.checkpointRetryMaxMilliseconds = 10
        return PipelineScheduler(
            graph: graph(source: FixedLines(Self.lines), counts: counts, lines: lines),
            options: options,
            store: store,
            listeners: listeners,
            logger: notices?.logger ?? Logger(label: "scheduler") { _ in SwiftLogNoOpLogHandler() },
            phaseObserver: { phase, batch in
                if let crashAt, crashAt == (phase, batch) { throw Crash() }
            }
        )
    }
}
