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
}

/// A failure while running a batch, naming the stage.
public struct BatchError: Error, CustomStringConvertible, Sendable {
    public var stage: String
    public var message: String
    /// True when a sink asked for a retry and retries ran out.
    public var retriesExhausted: Bool = false
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

    public init(graph: StreamGraph, parallelism: Int, taskSize: Int = 65_536) {
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
            do {
                for partition in 0..<(try source.partitionCount()) {
                    result[PartitionKey(source: index, partition: partition)] = try source.available(partition: partition)
                }
            } catch {
                throw BatchError(stage: graph.names[index], message: "\(error)")
            }
        }
        return result
    }

    /// Plans the next batch from `positions`.
    public func plan(positions: [PartitionKey: UInt64]) throws -> BatchPlan {
        let offered = try available()
        return BatchPlanner.plan(available: offered, positions: positions) { source in
            if case .source(_, let limit) = graph.nodes[source] { return limit }
            return Int.max
        }
    }

    // MARK: Running

    /// The working state of one task: partial aggregates and sink chunks it produced.
    private final class TaskState {
        var partials: [Int: KeyedPartials] = [:]
        var collected: [Int: [CollectedChunk]] = [:]
        var sinkChunks: [Int: [OwnedBatch]] = [:]
        var error: BatchError?

        /// Completes the task's partial aggregates (custom reducers combine what they collected).
        func finishPartials(_ names: [String]) {
            for (node, partials) in partials where error == nil {
                do {
                    try partials.finish()
                } catch {
                    self.error = BatchError(stage: names[node], message: "\(error)")
                }
            }
        }
    }

    /// Runs `plan` as batch `info`: reads, processes, writes and commits every sink. Throws without committing
    /// the sinks that had not committed yet if any stage fails.
    public func run(_ plan: BatchPlan, info: BatchInfo) throws -> BatchOutcome {
        let tasks = plan.tasks(taskSize: effectiveTaskSize(plan))
        var finished: [TaskState] = []

        // Segment 1: read each task's range and run it through the fused narrow stages.
        let readStates = parallelMap(tasks.count) { i -> TaskState in
            let state = TaskState()
            let task = tasks[i]
            guard case .source(let source, _) = graph.nodes[task.key.source] else { return state }
            do {
                let batch = try source.read(partition: task.key.partition, offsets: task.offsets)
                push(batch, from: task.key.source, into: state)
                state.finishPartials(graph.names)
            } catch let error as BatchError {
                state.error = error
            } catch {
                state.error = BatchError(stage: graph.names[task.key.source], message: "\(error)")
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
                    let state = TaskState()
                    do {
                        for output in try stage.run(partition: p, chunks: chunks, id: info.id) {
                            push(output, from: index, into: state)
                        }
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
                let state = TaskState()
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
                        state.error = BatchError(stage: graph.names[index], message: "\(error)")
                        return state
                    }
                }
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
        for (index, sink) in graph.sinks.enumerated() {
            let chunks = finished.flatMap { $0.sinkChunks[index] ?? [] }
            sinkRecords[index] = chunks.reduce(0) { $0 + $1.count }
            try write(chunks, to: sink, info: info)
        }
        let outcome = BatchOutcome(
            inputRecords: plan.recordCount,
            sinkRecords: sinkRecords,
            discarded: discardCount,
            firstDiscardReason: discardReason
        )
        discardCount = 0
        discardReason = nil
        return outcome
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

    /// Tasks big enough to amortise their cost, small enough that every core gets work.
    private func effectiveTaskSize(_ plan: BatchPlan) -> Int {
        let total = plan.recordCount
        let perCore = (total + parallelism * 2 - 1) / (parallelism * 2)
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
                    do {
                        push(try transform.transform(batch), from: next, into: state)
                    } catch {
                        state.error = BatchError(stage: graph.names[next], message: "\(error)")
                    }
                case .keyed(let stage, _):
                    let partials = state.partials[next] ?? KeyedPartials(op: stage.op, expectedKeys: keyHint(next))
                    state.partials[next] = partials
                    partials.add(batch.view)
                case .collecting(_, let inputs):
                    let input = inputs.firstIndex(of: index) ?? 0
                    state.collected[next, default: []].append(CollectedChunk(input: input, batch: batch))
                case .union:
                    push(batch, from: next, into: state)
                case .source:
                    break
                }
            }
        }
    }

    private func write(_ chunks: [OwnedBatch], to sink: StreamGraph.Sink, info: BatchInfo) throws {
        var attempt = 0
        while true {
            do {
                try sink.sink.begin(info)
                for chunk in chunks { try sink.sink.write(chunk) }
                try sink.sink.commit(info)
                return
            } catch let error as any RetryableError where error.isRetryable && attempt < sinkRetries {
                let delay = sinkRetryBackoffMilliseconds << min(attempt, 10)
                attempt += 1
                // Said when it happens, not only when the retries run out: a sink that keeps failing is visible.
                (sink.sink as? any SinkRetryListener)?.willRetry(
                    info, attempt: attempt + 1, of: sinkRetries + 1, afterMilliseconds: delay, because: error
                )
                sleepMilliseconds(delay)
            } catch let error as any RetryableError where error.isRetryable {
                throw BatchError(
                    stage: sink.name,
                    message: "\(error) (gave up after \(attempt + 1) attempts)",
                    retriesExhausted: true
                )
            } catch {
                throw BatchError(stage: sink.name, message: "\(error)")
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
                throw BatchError(stage: graph.names[range.key.source], message: "commit: \(error)")
            }
        }
    }

    /// Tells each source where its partitions stand after a restart (a `commit` up to the recovered position), so
    /// that a source can serve, limit or forget from there before the first batch. Partitions a source does not
    /// report (yet) are skipped.
    public func announce(positions: [PartitionKey: UInt64]) throws {
        for (key, position) in positions.sorted(by: { $0.key < $1.key }) {
            guard case .source(let source, _) = graph.nodes[key.source] else { continue }
            do {
                guard key.partition < (try source.partitionCount()) else { continue }
                try source.commit(partition: key.partition, upTo: position)
            } catch {
                throw BatchError(stage: graph.names[key.source], message: "commit: \(error)")
            }
        }
    }

    private func firstError(_ states: [TaskState]) throws {
        if let error = states.lazy.compactMap(\.error).first { throw error }
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
