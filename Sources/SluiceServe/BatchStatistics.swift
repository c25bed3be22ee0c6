import Foundation
import SluiceHost

/// One pipeline's figures, as Spark's Streaming tab and its REST form (`.../streaming/statistics`, `.../batches`)
/// show them: the last batches with their delays, totals since the server started watching, and where each source
/// partition stands. Built from the child's event stream; kept across the child's restarts.
struct BatchStatistics: Sendable {
    /// A batch as `GET /batches/{id}/streaming/batches` lists it.
    struct Batch: Codable, Sendable, Equatable {
        var id: UInt64
        /// The batch time (ms since 1970), as in the pipeline's output.
        var time: Int64
        /// `processing`, `completed` or `failed`.
        var status: String
        var isReplay: Bool
        var records: Int?
        /// Records per second of batch interval (Spark's input rate).
        var inputRate: Double?
        var schedulingDelayMilliseconds: Double?
        var processingMilliseconds: Double?
        var totalDelayMilliseconds: Double?
        var discarded: Int?
        var error: String?
        var ranges: [SourceRange]
        /// Per stage and sink: records in and out, and the time in its own calls.
        var stages: [BatchEventLine.Stage]?
        /// Calls that returned an error and sink retries in the batch (a completed batch may have some).
        var errors: [BatchEventLine.CallErrors]?
        var sinkRetries: [String: Int]?
    }

    /// A source partition: the committed position (where its next batch starts) and what the server saw it read.
    struct Partition: Codable, Sendable, Equatable {
        var source: String
        var partition: Int
        var position: UInt64
        var records: UInt64
        var lastBatch: UInt64
        /// Records the source offered and no batch read yet, after `lastBatch` (nil until a batch reports it).
        var lag: UInt64?
        var availableEnd: UInt64?
    }

    let kept: Int
    private(set) var batchIntervalMilliseconds: Int?
    private(set) var batches: [Batch] = []
    private(set) var completed = 0
    private(set) var failed = 0
    private(set) var records = 0
    private var partitions: [String: Partition] = [:]

    init(kept: Int) { self.kept = kept }

    var partitionList: [Partition] {
        partitions.values.sorted { ($0.source, $0.partition) < ($1.source, $1.partition) }
    }

    mutating func apply(_ line: BatchEventLine) {
        switch line.event {
        case .hello:
            batchIntervalMilliseconds = line.batchIntervalMilliseconds
        case .batchStarted:
            guard let id = line.id else { return }
            update(id) { batch in
                batch = Batch(
                    id: id, time: line.timeMilliseconds ?? 0, status: "processing", isReplay: line.isReplay ?? false,
                    schedulingDelayMilliseconds: line.schedulingDelayMilliseconds, ranges: line.ranges ?? []
                )
            }
        case .batchCompleted:
            guard let id = line.id else { return }
            completed += 1
            records += line.records ?? 0
            let interval = batchIntervalMilliseconds
            update(id) { batch in
                batch.status = "completed"
                batch.time = line.timeMilliseconds ?? batch.time
                batch.records = line.records
                if let interval, interval > 0, let records = line.records {
                    batch.inputRate = Double(records) * 1000 / Double(interval)
                }
                batch.schedulingDelayMilliseconds = line.schedulingDelayMilliseconds
                batch.processingMilliseconds = line.processingMilliseconds
                batch.totalDelayMilliseconds = line.totalDelayMilliseconds
                batch.discarded = line.discarded
                batch.ranges = line.ranges ?? batch.ranges
                batch.stages = line.stages
                batch.errors = line.errors
                batch.sinkRetries = line.sinkRetries
            }
            for range in line.ranges ?? [] {
                let key = "\(range.source)\u{0}\(range.partition)"
                var partition = partitions[key]
                    ?? Partition(source: range.source, partition: range.partition, position: 0, records: 0, lastBatch: id)
                partition.position = range.to
                partition.records += range.to >= range.from ? range.to - range.from : 0
                partition.lastBatch = id
                partitions[key] = partition
            }
            for backlog in line.backlog ?? [] {
                let key = "\(backlog.source)\u{0}\(backlog.partition)"
                var partition = partitions[key]
                    ?? Partition(source: backlog.source, partition: backlog.partition, position: backlog.position, records: 0, lastBatch: id)
                partition.position = backlog.position
                partition.lag = backlog.lag
                partition.availableEnd = backlog.availableEnd
                partitions[key] = partition
            }
        case .batchFailed:
            guard let id = line.id else { return }
            failed += 1
            update(id) { batch in
                batch.status = "failed"
                batch.error = line.error
                batch.errors = line.errors
                batch.sinkRetries = line.sinkRetries
            }
        }
    }

    /// Changes the batch with this id, adding it (and dropping the oldest past `kept`) when it is new.
    private mutating func update(_ id: UInt64, _ change: (inout Batch) -> Void) {
        if let index = batches.lastIndex(where: { $0.id == id }) {
            change(&batches[index])
            return
        }
        var batch = Batch(id: id, time: 0, status: "processing", isReplay: false, ranges: [])
        change(&batch)
        batches.append(batch)
        if batches.count > kept { batches.removeFirst(batches.count - kept) }
    }

    /// The averages over the completed batches kept, as the Streaming tab shows them beside its charts.
    var averages: Averages {
        let done = batches.filter { $0.status == "completed" }
        func mean(_ value: (Batch) -> Double?) -> Double? {
            let values = done.compactMap(value)
            return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
        }
        return Averages(
            inputRate: mean(\.inputRate), schedulingDelayMilliseconds: mean(\.schedulingDelayMilliseconds),
            processingMilliseconds: mean(\.processingMilliseconds), totalDelayMilliseconds: mean(\.totalDelayMilliseconds)
        )
    }

    struct Averages: Codable, Sendable, Equatable {
        var inputRate: Double?
        var schedulingDelayMilliseconds: Double?
        var processingMilliseconds: Double?
        var totalDelayMilliseconds: Double?
    }
}
