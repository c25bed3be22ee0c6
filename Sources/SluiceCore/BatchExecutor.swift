import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import SluiceSDK
import Synchronization

/// What one batch did.
public struct BatchOutcome: Sendable {
    public var inputRecords: Int
    /// Records written to each sink, by sink index.
    public var sinkRecords: [Int]
    /// Records a keyed stage could not use, with the first reason.
    public var discarded: Int
    public var firstDiscardReason: String?
    /// Each node's figures, in graph order, then each sink's.
    public var stages: [StageFigures] = []
}

/// A failure while running a batch, naming the stage.
public struct BatchError: Error, CustomStringConvertible, Sendable {
    public var stage: String
    public var message: String
    /// True when a sink asked for a retry and retries ran out.
    public var retriesExhausted: Bool = false
    /// The call into the stage that returned the error (`BatchIncidents.Call`), or nil when the stage's own code
    /// failed rather than a call into a component.
    public var call: String? = nil
    public var description: String { "\(stage): \(message)" }
}

/// Runs batches of a graph: reads the planned ranges in parallel, runs the narrow stages fused per task, shuffles
/// keyed stages by hash partition, then writes and commits the sinks in order.
public final class BatchExecutor: @unchecked Sendable {  // used from one scheduling thread; tasks share nothing mutable
    public let graph: StreamGraph
    /// How many tasks run at once (the number of cores by default).
    public let parallelism: Int
    /// Records per read task (the unit of parallel work within a partition).
    public let taskSize: Int
    /// How often a sink's RETRY is retried before the batch fails, and the first back-off, which doubles each time:
    /// 6 attempts in all, with 100 + 200 + 400 + 800 + 1600 ms ≈ 3.1 s of waiting (docs/abi.md §9).
    public var sinkRetries = 5
    public var sinkRetryBackoffMilliseconds = 100

    /// For each node, the nodes and sinks that consume it.
    private let consumers: [[Consumer]]

    private enum Consumer {
        case node(Int)
        case sink(Int)
    }

    public init(graph: StreamGraph, parallelism: Int, taskSize: Int = 1 << 20) {
        self.graph = graph
        self.parallelism = max(1, parallelism)
        self.taskSize = max(1, taskSize)
        var consumers = [[Consumer]](repeating: [], count: graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() {
            switch node {
            case .source: break
            case .transform(_, let input): consumers[input].append(.node(index))
            case .keyed(_, let inputs), .union(let inputs):
                for input in Set(inputs) { consumers[input].append(.node(index)) }
            case .collecting(_, let inputs):
                for input in Set(inputs) { consumers[input].append(.node(index)) }
            }
        }
        for (index, sink) in graph.sinks.enumerated() { consumers[sink.input].append(.sink(index)) }
        self.consumers = consumers
        keyHints = [Int](repeating: 0, count: graph.nodes.count)
    }

    // MARK: Planning

    /// Asks every source partition what is available.
    public func available() throws -> [PartitionKey: Range<UInt64>] {
        var result: [PartitionKey: Range<UInt64>] = [:]
        for index in graph.sourceIndices {
            guard case .source(let source, _) = graph.nodes[index] else { continue }
            let count: Int
            do {
                count = try source.partitionCount()
            } catch {
                throw counted(BatchError(stage: graph.names[index], message: "\(error)", call: "partitions"))
            }
            for partition in 0..<count {
                do {
                    result[PartitionKey(source: index, partition: partition)] = try source.available(partition: partition)
                } catch {
                    throw counted(BatchError(stage: graph.names[index], message: "\(error)", call: "available"))
                }
            }
        }
        return result
    }

    /// Plans the next batch from `positions`.
    public func plan(positions: [PartitionKey: UInt64]) throws -> BatchPlan {
        plan(available: try available(), positions: positions)
    }

    /// Plans the next batch from `positions` and what `available()` offered (the caller keeps the offer: how far
    /// each partition has been written is its lag).
    public func plan(
        available offered: [PartitionKey: Range<UInt64>], positions: [PartitionKey: UInt64], caps: [PartitionKey: Int] = [:]
    ) -> BatchPlan {
        BatchPlanner.plan(available: offered, positions: positions, caps: caps) { source in
            if case .source(_, let limit) = graph.nodes[source] { return limit }
            return Int.max
        }
    }

    // MARK: Incidents

    /// Errors returned by calls into components, and sink retries, since the last `takeIncidents()`.
    private var incidents = BatchIncidents()

    /// What went wrong in calls since the last time: the scheduler takes them after each batch, completed or not.
    public func takeIncidents() -> BatchIncidents {
        defer { incidents = BatchIncidents() }
        return incidents
    }

    /// Counts `error` when a call into a component returned it, and gives it back to be thrown. Scheduling thread
    /// only: the tasks' errors are counted when their states are gathered (`firstError`).
    private func counted(_ error: BatchError) -> BatchError {
        if let call = error.call {
            incidents.errors[BatchIncidents.Call(component: error.stage, call: call), default: 0] += 1
        }
        return error
    }

    // MARK: Running

    /// Records in and out of one stage and the time in its calls, in one task or summed over a batch.
    private struct Tally {
        var recordsIn = 0
        var recordsOut = 0
        var nanoseconds: UInt64 = 0

        mutating func add(_ other: Tally) {
            recordsIn += other.recordsIn
            recordsOut += other.recordsOut
            nanoseconds += other.nanoseconds
        }
    }

    /// The working state of one task: partial aggregates and sink chunks it produced.
    private final class TaskState {
        var partials: [Int: KeyedPartials] = [:]
        var collected: [Int: [CollectedChunk]] = [:]
        var sinkChunks: [Int: [OwnedBatch]] = [:]
        var error: BatchError?
        /// By node index: what each stage did in this task.
        var tallies: [Tally]

        init(nodes: Int) { tallies = [Tally](repeating: Tally(), count: nodes) }

        /// Adds a call of node `node` that began at `began` (`BatchExecutor.now()`).
        func tally(_ node: Int, in recordsIn: Int, out recordsOut: Int, since began: UInt64) {
            tallies[node].recordsIn += recordsIn
            tallies[node].recordsOut += recordsOut
            tallies[node].nanoseconds += BatchExecutor.now() &- began
        }

        /// Completes the task's partial aggregates (custom reducers combine what they collected).
        func finishPartials(_ names: [String]) {
            for (node, partials) in partials where error == nil {
                do {
                    try partials.finish()
                } catch {
                    self.error = BatchError(stage: names[node], message: "\(error)", call: "reduce")
                }
            }
        }
    }

    /// A monotonic clock in nanoseconds, read once per call into a stage (a chunk of records), never per record.
    fileprivate static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Runs `plan` as batch `info`: reads, processes, writes and commits every sink. Throws without committing
    /// the sinks that had not committed yet if any stage fails.
    public func run(_ plan: BatchPlan, info: BatchInfo) throws -> BatchOutcome {
        let tasks = plan.tasks(taskSize: effectiveTaskSize(plan))
        var finished: [TaskState] = []

        // Segment 1: read each task's range and run it through the fused narrow stages.
        let nodeCount = graph.nodes.count
        let readStates = parallelMap(tasks.count) { i -> TaskState in
            let state = TaskState(nodes: nodeCount)
            let task = tasks[i]
            guard case .source(let source, _) = graph.nodes[task.key.source] else { return state }
            do {
                // In pieces, each pushed through before the next is read: a task holds one piece of its input at a
                // time, not its whole range (the ABI lets a source be asked for any range it offered).
                var from = task.offsets.lowerBound
                while from < task.offsets.upperBound && state.error == nil {
                    let to = min(task.offsets.upperBound, from + UInt64(Self.readPieceRecords))
                    let began = Self.now()
                    let batch = try source.read(partition: task.key.partition, offsets: from..<to)
                    state.tally(task.key.source, in: batch.count, out: batch.count, since: began)
                    push(batch, from: task.key.source, into: state)
                    from = to
                }
                state.finishPartials(graph.names)
            } catch let error as BatchError {
                state.error = error
            } catch {
                state.error = BatchError(stage: graph.names[task.key.source], message: "\(error)", call: "read")
            }
            return state
        }
        try firstError(readStates)
        finished += readStates

        // Then each keyed stage, in graph order: merge the partials of every task so far, partition by partition,
        // and push each partition's output through the stages after it.
        for (index, node) in graph.nodes.enumerated() {
            if case .collecting(let stage, _) = node {
                let chunks = finished.flatMap { $0.collected.removeValue(forKey: index) ?? [] }
                let states = parallelMap(stage.partitions) { p -> TaskState in
                    let state = TaskState(nodes: nodeCount)
                    let began = Self.now()
                    do {
                        let outputs = try stage.run(partition: p, chunks: chunks, id: info.id)
                        state.tally(index, in: 0, out: outputs.reduce(0) { $0 + $1.count }, since: began)
                        for output in outputs { push(output, from: index, into: state) }
                        state.finishPartials(graph.names)
                    } catch {
                        state.error = BatchError(stage: graph.names[index], message: "\(error)")
                    }
                    return state
                }
                stage.finish(batch: info.id)
                try firstError(states)
                let discarded = stage.discardedInLastBatch
                discardCount += discarded.count
                if discardReason == nil { discardReason = discarded.reason }
                finished += states
                continue
            }
            guard case .keyed(let stage, _) = node else { continue }
            let partials = finished.compactMap { $0.partials.removeValue(forKey: index) }
            keyHints[index] = partials.map(\.keyCount).max() ?? 0
            let partitions = stage.partitions
            let keyedStates = parallelMap(partitions) { p -> TaskState in
                let state = TaskState(nodes: nodeCount)
                let began = Self.now()
                let output: OwnedBatch?
                if stage.op.isPlainCountByValue {
                    output = Self.mergeCounts(partials.compactMap(\.counts), partition: p, of: partitions)
                } else {
                    do {
                        let tables = partials.compactMap(\.accumulators)
                        let merged = KeyTable<Accumulator>(expectedKeys: (tables.map(\.count).max() ?? 0) / partitions + 16)
                        for table in tables { try merged.fold(table, stage.op.reducer, partition: p, of: partitions) }
                        output = stage.render(try stage.step(partition: p, batch: merged, id: info.id))
                    } catch {
                        state.error = BatchError(stage: graph.names[index], message: "\(error)", call: "reduce")
                        return state
                    }
                }
                state.tally(index, in: 0, out: output?.count ?? 0, since: began)
                if let output { push(output, from: index, into: state) }
                state.finishPartials(graph.names)
                return state
            }
            stage.finish(batch: info.id)
            try firstError(keyedStates)
            discardedTotals(partials, into: &discardCount, reason: &discardReason)
            finished += keyedStates
        }

        for case .transform(let transform as any DiscardReporting, _) in graph.nodes {
            let discarded = transform.takeDiscarded()
            discardCount += discarded.count
            if discardReason == nil { discardReason = discarded.reason }
        }

        // Finally the sinks, each from one thread, chunks in task order.
        var sinkRecords = [Int](repeating: 0, count: graph.sinks.count)
        var stages = stageFigures(finished)
        for (index, sink) in graph.sinks.enumerated() {
            let chunks = finished.flatMap { $0.sinkChunks[index] ?? [] }
            sinkRecords[index] = chunks.reduce(0) { $0 + $1.count }
            let nanoseconds = try write(chunks, to: sink, info: info)
            stages.append(
                StageFigures(stage: sink.name, recordsIn: sinkRecords[index], recordsOut: sinkRecords[index], nanoseconds: nanoseconds)
            )
        }
        let outcome = BatchOutcome(
            inputRecords: plan.recordCount,
            sinkRecords: sinkRecords,
            discarded: discardCount,
            firstDiscardReason: discardReason,
            stages: stages
        )
        discardCount = 0
        discardReason = nil
        return outcome
    }

    /// Every node's figures in the batch, in graph order: the tasks' tallies added up.
    private func stageFigures(_ states: [TaskState]) -> [StageFigures] {
        var totals = [Tally](repeating: Tally(), count: graph.nodes.count)
        for state in states {
            for node in totals.indices { totals[node].add(state.tallies[node]) }
        }
        return totals.indices.map { node in
            StageFigures(
                stage: graph.names[node], recordsIn: totals[node].recordsIn, recordsOut: totals[node].recordsOut,
                nanoseconds: totals[node].nanoseconds
            )
        }
    }

    private var discardCount = 0
    /// For each keyed node, the most distinct keys one task saw in the last batch: the next tables start that big
    /// instead of growing through every size again. Written between the parallel segments only.
    private var keyHints: [Int]

    private func keyHint(_ node: Int) -> Int { max(1024, keyHints[node]) }

    private var discardReason: String?

    private func discardedTotals(_ partials: [KeyedPartials], into count: inout Int, reason: inout String?) {
        for partial in partials {
            count += partial.discarded
            if reason == nil { reason = partial.firstDiscardReason }
        }
    }

    /// The plain countByValue's output for partition `p`: the counts of its keys from every task, in task order.
    private static func mergeCounts(_ tables: [KeyTable<Int64>], partition p: Int, of partitions: Int) -> OwnedBatch {
        let merged: KeyTable<Int64>
        if partitions == 1, let first = tables.first {
            merged = first
            for other in tables.dropFirst() { merged.merge(other) }
        } else {
            merged = KeyTable<Int64>(expectedKeys: (tables.map(\.count).max() ?? 0) / partitions + 16)
            for other in tables { merged.merge(other, partition: p, of: partitions) }
        }
        var builder = BatchBuilder(valueType: .int64, keyed: true, expectedCount: merged.count)
        merged.forEach { key, value in builder.append(key: key, value: value) }
        return OwnedBatch(builder)
    }

    /// Records handed to a transform per call: small enough that a chunk's output stays in the cache until the
    /// stages after it have used it, big enough that the call costs nothing (a multiple of 8: `OwnedBatch.slice`).
    public static let chunkRecords = 4096

    /// Records a task reads from its source at a time: its memory for input is one piece, whatever the task's size.
    public static let readPieceRecords = 4096

    /// Tasks big enough to amortise their cost, small enough that every core gets work: one per core. A task reads
    /// its input a piece at a time, so a big task costs no more memory for input than a small one, and each task
    /// builds its own table per keyed stage, so more tasks would mean more tables alive until they are merged.
    private func effectiveTaskSize(_ plan: BatchPlan) -> Int {
        let total = plan.recordCount
        let perCore = (total + parallelism - 1) / parallelism
        return min(taskSize, max(4096, perCore))
    }

    /// Sends `batch`, the output of node `index`, to everything that consumes it.
    private func push(_ batch: OwnedBatch, from index: Int, into state: TaskState) {
        for consumer in consumers[index] {
            guard state.error == nil else { return }
            switch consumer {
            case .sink(let sink):
                state.sinkChunks[sink, default: []].append(batch)
            case .node(let next):
                switch graph.nodes[next] {
                case .transform(let transform, _):
                    // In chunks, each taken through every stage after this one before the next: a flatMap's output
                    // (split's words, eight times its lines) is consumed while it is in the cache instead of being
                    // built whole for the task first.
                    var start = 0
                    repeat {
                        let end = min(batch.count, start + Self.chunkRecords)
                        let chunk = batch.slice(start..<end)
                        start = end
                        let began = Self.now()
                        let output: OwnedBatch
                        do {
                            output = try transform.transform(chunk)
                        } catch {
                            state.tally(next, in: chunk.count, out: 0, since: began)
                            state.error = BatchError(stage: graph.names[next], message: "\(error)", call: "transform")
                            break
                        }
                        // Timed before the push: the stages after this one count their own time.
                        state.tally(next, in: chunk.count, out: output.count, since: began)
                        push(output, from: next, into: state)
                    } while start < batch.count && state.error == nil
                case .keyed(let stage, _):
                    let began = Self.now()
                    let partials = state.partials[next] ?? KeyedPartials(op: stage.op, expectedKeys: keyHint(next))
                    state.partials[next] = partials
                    partials.add(batch.view)
                    state.tally(next, in: batch.count, out: 0, since: began)
                case .collecting(_, let inputs):
                    let input = inputs.firstIndex(of: index) ?? 0
                    state.collected[next, default: []].append(CollectedChunk(input: input, batch: batch))
                    state.tallies[next].recordsIn += batch.count
                case .union:
                    state.tallies[next].recordsIn += batch.count
                    state.tallies[next].recordsOut += batch.count
                    push(batch, from: next, into: state)
                case .source:
                    break
                }
            }
        }
    }

    /// Writes and commits the batch to `sink`, retrying as it asks; returns the time spent in its calls (without the
    /// waits between attempts).
    private func write(_ chunks: [OwnedBatch], to sink: StreamGraph.Sink, info: BatchInfo) throws -> UInt64 {
        var attempt = 0
        var nanoseconds: UInt64 = 0
        while true {
            let began = Self.now()
            var call = "begin"
            do {
                try sink.sink.begin(info)
                call = "write"
                for chunk in chunks { try sink.sink.write(chunk) }
                call = "commit"
                try sink.sink.commit(info)
                return nanoseconds + (Self.now() &- began)
            } catch let error as any RetryableError where error.isRetryable && attempt < sinkRetries {
                nanoseconds += Self.now() &- began
                _ = counted(BatchError(stage: sink.name, message: "\(error)", call: call))
                incidents.sinkRetries[sink.name, default: 0] += 1
                let delay = sinkRetryBackoffMilliseconds << min(attempt, 10)
                attempt += 1
                // Said when it happens, not only when the retries run out: a sink that keeps failing is visible.
                (sink.sink as? any SinkRetryListener)?.willRetry(
                    info, attempt: attempt + 1, of: sinkRetries + 1, afterMilliseconds: delay, because: error
                )
                sleepMilliseconds(delay)
            } catch let error as any RetryableError where error.isRetryable {
                throw counted(
                    BatchError(
                        stage: sink.name,
                        message: "\(error) (gave up after \(attempt + 1) attempts)",
                        retriesExhausted: true,
                        call: call
                    )
                )
            } catch {
                throw counted(BatchError(stage: sink.name, message: "\(error)", call: call))
            }
        }
    }

    /// Tells every source which offsets are now committed, so it may forget them.
    public func commitSources(_ plan: BatchPlan) throws {
        for range in plan.ranges {
            guard case .source(let source, _) = graph.nodes[range.key.source] else { continue }
            do {
                try source.commit(partition: range.key.partition, upTo: range.offsets.upperBound)
            } catch {
                let name = graph.names[range.key.source]
                throw counted(BatchError(stage: name, message: "commit: \(error)", call: "commit"))
            }
        }
    }

    /// Tells each source where its partitions stand after a restart (a `commit` up to the recovered position), so
    /// that a source can serve, limit or forget from there before the first batch. Partitions a source does not
    /// report (yet) are skipped.
    public func announce(positions: [PartitionKey: UInt64]) throws {
        for (key, position) in positions.sorted(by: { $0.key < $1.key }) {
            guard case .source(let source, _) = graph.nodes[key.source] else { continue }
            let name = graph.names[key.source]
            do {
                guard key.partition < (try source.partitionCount()) else { continue }
            } catch {
                throw counted(BatchError(stage: name, message: "commit: \(error)", call: "partitions"))
            }
            do {
                try source.commit(partition: key.partition, upTo: position)
            } catch {
                throw counted(BatchError(stage: name, message: "commit: \(error)", call: "commit"))
            }
        }
    }

    /// Throws the first task's error, after counting every task's (several tasks may fail in one batch).
    private func firstError(_ states: [TaskState]) throws {
        let errors = states.compactMap(\.error)
        for error in errors { _ = counted(error) }
        if let error = errors.first { throw error }
    }

    /// Runs `body` for 0..<count on all cores and returns the results in index order.
    private func parallelMap(_ count: Int, _ body: (Int) -> TaskState) -> [TaskState] {
        guard count > 1 else { return (0..<count).map(body) }
        let results = UnsafeMutableBufferPointer<TaskState?>.allocate(capacity: count)
        results.initialize(repeating: nil)
        defer {
            // The slots hold references: release them before freeing the memory (deallocate alone leaks them).
            results.deinitialize()
            results.deallocate()
        }
        let slots = SendableBuffer(results)
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { i in slots.buffer[i] = work.value(i) }
        }
        return results.map { $0! }
    }
}

/// A buffer each parallel iteration writes one distinct slot of.
private struct SendableBuffer<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T>
    init(_ buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
}

/// A value passed to concurrentPerform whose concurrent use the caller has made safe.
private struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

func sleepMilliseconds(_ milliseconds: Int) {
    var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 { request = remaining }
}
