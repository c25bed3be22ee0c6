import SluiceCore
import SluiceSDK
import Synchronization
import Testing

/// A replayable in-memory source: fixed records per partition.
final class MemorySource: BatchSource {
    let partitions: [[String]]
    let commits = Mutex<[Int: UInt64]>([:])
    init(_ partitions: [[String]]) { self.partitions = partitions }
    func partitionCount() throws -> Int { partitions.count }
    func available(partition: Int) throws -> Range<UInt64> { 0..<UInt64(partitions[partition].count) }
    func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
        var builder = BatchBuilder()
        for i in offsets { builder.append(partitions[partition][Int(i)]) }
        return OwnedBatch(builder)
    }
    func commit(partition: Int, upTo offset: UInt64) throws { commits.withLock { $0[partition] = offset } }
}

/// Splits values on spaces (the word count's flatMap), optionally emitting (word, "1") text pairs.
final class WordsTransform: BatchTransform {
    let pairs: Bool
    init(pairs: Bool = false) { self.pairs = pairs }
    func transform(_ input: OwnedBatch) throws -> OwnedBatch {
        let view = input.view
        var builder = BatchBuilder(keyed: pairs)
        for i in 0..<view.count {
            for word in view.valueString(at: i).split(separator: " ") {
                if pairs { builder.append(key: String(word), value: "1") } else { builder.append(String(word)) }
            }
        }
        return OwnedBatch(builder)
    }
}

/// Collects (key, value) display strings per batch; can fail with a retryable error a number of times.
final class CollectingSink: BatchSink {
    struct Failure: RetryableError { var isRetryable: Bool }
    let state = Mutex<(batches: [UInt64: [String]], pending: [String], failuresLeft: Int, begins: Int)>(([:], [], 0, 0))
    let retryable: Bool
    init(failures: Int = 0, retryable: Bool = true) {
        self.retryable = retryable
        state.withLock { $0.failuresLeft = failures }
    }
    func begin(_ info: BatchInfo) throws {
        state.withLock {
            $0.pending = []
            $0.begins += 1
        }
    }
    func write(_ chunk: OwnedBatch) throws {
        let view = chunk.view
        try state.withLock { state in
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                throw Failure(isRetryable: retryable)
            }
            for i in 0..<view.count { state.pending.append(view.displayString(at: i)) }
        }
    }
    func commit(_ info: BatchInfo) throws { state.withLock { $0.batches[info.id] = $0.pending } }
    var batches: [UInt64: [String]] { state.withLock { $0.batches } }
}

struct BatchExecutorTests {
    static func lines(_ count: Int, seed: Int) -> [String] {
        var random = ByteKeyTableTests.SplitMix(state: UInt64(seed))
        return (0..<count).map { _ in
            (0..<Int.random(in: 0...12, using: &random)).map { _ in "w\(Int.random(in: 0..<300, using: &random))" }
                .joined(separator: " ")
        }
    }

    func counts(_ output: [String]) -> [String: Int] {
        var result: [String: Int] = [:]
        for record in output {
            // "(word,3)"
            let inner = record.dropFirst().dropLast()
            let comma = inner.lastIndex(of: ",")!
            result[String(inner[..<comma]), default: 0] += Int(inner[inner.index(after: comma)...])!
        }
        return result
    }

    func wordCount(_ partitions: [[String]], pairs: Bool, parallelism: Int, keyedPartitions: Int) throws -> [String] {
        var graph = StreamGraph()
        let source = graph.add("lines", .source(MemorySource(partitions), maxRecordsPerPartition: 1_000_000))
        let words = graph.add("words", .transform(WordsTransform(pairs: pairs), input: source))
        let counts = graph.add(
            "counts",
            .keyed(KeyedStage(KeyedOperator(pairs ? .reduceByKey : .countByValue), partitions: keyedPartitions), inputs: [words])
        )
        let sink = CollectingSink()
        graph.addSink(.init(name: "out", sink: sink, input: counts))
        let executor = BatchExecutor(graph: graph, parallelism: parallelism, taskSize: 100)
        let plan = try executor.plan(positions: [:])
        let outcome = try executor.run(plan, info: BatchInfo(id: 0, timeMilliseconds: 0))
        #expect(outcome.inputRecords == partitions.reduce(0) { $0 + $1.count })
        return sink.batches[0] ?? []
    }

    @Test(arguments: [(1, 1), (2, 2), (4, 3)])
    func wordCountMatchesANaiveCount(parallelism: Int, keyedPartitions: Int) throws {
        let partitions = [Self.lines(1500, seed: 1), Self.lines(700, seed: 2), []]
        var expected: [String: Int] = [:]
        for line in partitions.joined() { for word in line.split(separator: " ") { expected[String(word), default: 0] += 1 } }
        for pairs in [false, true] {
            let output = try wordCount(partitions, pairs: pairs, parallelism: parallelism, keyedPartitions: keyedPartitions)
            #expect(output.count == expected.count, "one record per distinct word")
            #expect(counts(output) == expected)
        }
    }

    @Test func outputOrderIsDeterministic() throws {
        let partitions = [Self.lines(3000, seed: 9)]
        let first = try wordCount(partitions, pairs: false, parallelism: 4, keyedPartitions: 2)
        for _ in 0..<3 {
            #expect(try wordCount(partitions, pairs: false, parallelism: 4, keyedPartitions: 2) == first)
        }
    }

    /// A task reads its range in pieces of at most `BatchExecutor.readPieceRecords`, and a transform receives each
    /// piece in chunks of at most `BatchExecutor.chunkRecords`, each a slice of the piece: the slices must carry the
    /// right values, keys (absent ones too) and timestamps, in order.
    @Test func transformsSeeChunksThatAreExactSlicesOfTheTask() throws {
        final class KeyedSource: BatchSource, @unchecked Sendable {  // `reads` is guarded by its mutex
            let count: Int
            let reads = Mutex<[Int]>([])
            init(count: Int) { self.count = count }
            func partitionCount() throws -> Int { 1 }
            func available(partition: Int) throws -> Range<UInt64> { 0..<UInt64(count) }
            func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
                reads.withLock { $0.append(offsets.count) }
                var builder = BatchBuilder(keyed: true, timestamps: true)
                for i in offsets {
                    // Every third key absent: the slices share the key validity bitmap.
                    if i % 3 == 0 { builder.append("v\(i)") } else { builder.append(key: "k\(i)", value: "v\(i)") }
                    builder.setLastTimestamp(Int64(i) * 10)
                }
                return OwnedBatch(builder)
            }
            func commit(partition: Int, upTo offset: UInt64) throws {}
        }
        /// Copies its input record by record and notes the size of every call.
        final class CopyTransform: BatchTransform, @unchecked Sendable {  // `sizes` is guarded by its mutex
            let sizes = Mutex<[Int]>([])
            func transform(_ input: OwnedBatch) throws -> OwnedBatch {
                let view = input.view
                sizes.withLock { $0.append(view.count) }
                var builder = BatchBuilder(keyed: true, timestamps: true)
                for i in 0..<view.count {
                    let timestamp = view.timestamp(at: i) ?? -1
                    let value = view.valueString(at: i)
                    if let key = view.keyString(at: i) { builder.append(key: key, value: value) } else { builder.append(value) }
                    builder.setLastTimestamp(timestamp)
                }
                return OwnedBatch(builder)
            }
        }
        final class TimedSink: BatchSink, @unchecked Sendable {  // written from the scheduling thread only
            var records: [String] = []
            func begin(_ info: BatchInfo) throws {}
            func write(_ chunk: OwnedBatch) throws {
                let view = chunk.view
                for i in 0..<view.count { records.append("\(view.displayString(at: i))@\(view.timestamp(at: i) ?? -1)") }
            }
            func commit(_ info: BatchInfo) throws {}
        }
        // Two tasks (half the records each, on one core), each more than a piece.
        let total = 2 * BatchExecutor.readPieceRecords + 3 * BatchExecutor.chunkRecords + 1000
        var graph = StreamGraph()
        let keyed = KeyedSource(count: total)
        let source = graph.add("lines", .source(keyed, maxRecordsPerPartition: Int.max))
        let copy = CopyTransform()
        let copied = graph.add("copy", .transform(copy, input: source))
        let sink = TimedSink()
        graph.addSink(.init(name: "out", sink: sink, input: copied))
        let executor = BatchExecutor(graph: graph, parallelism: 1, taskSize: total)
        let plan = try executor.plan(positions: [:])
        _ = try executor.run(plan, info: BatchInfo(id: 0, timeMilliseconds: 0))
        let expected = (0..<total).map { i in (i % 3 == 0 ? "v\(i)" : "(k\(i),v\(i))") + "@\(i * 10)" }
        #expect(sink.records == expected)
        let sizes = copy.sizes.withLock { $0 }
        #expect(sizes.reduce(0, +) == total)
        #expect(sizes.allSatisfy { $0 <= BatchExecutor.chunkRecords } && sizes.count > 1, "\(sizes)")
        let reads = keyed.reads.withLock { $0 }
        #expect(reads.reduce(0, +) == total)
        #expect(reads.allSatisfy { $0 <= BatchExecutor.readPieceRecords } && reads.count > 2, "\(reads)")
    }

    @Test func batchesAdvanceThroughTheSourceAndCommitIt() throws {
        var graph = StreamGraph()
        let memory = MemorySource([(0..<25).map { "r\($0)" }])
        let source = graph.add("lines", .source(memory, maxRecordsPerPartition: 10))
        let sink = CollectingSink()
        graph.addSink(.init(name: "out", sink: sink, input: source))
        let executor = BatchExecutor(graph: graph, parallelism: 2)
        var positions: [PartitionKey: UInt64] = [:]
        var sizes: [Int] = []
        for id in 0..<4 {
            let plan = try executor.plan(positions: positions)
            let outcome = try executor.run(plan, info: BatchInfo(id: UInt64(id), timeMilliseconds: Int64(id)))
            try executor.commitSources(plan)
            positions.merge(plan.endPositions) { $1 }
            sizes.append(outcome.inputRecords)
        }
        #expect(sizes == [10, 10, 5, 0])
        #expect(sink.batches[1] == (10..<20).map { "r\($0)" })
        #expect(memory.commits.withLock { $0[0] } == 25)
    }

    @Test func reduceByKeyDiscardsRecordsWithoutKeysOrNumbers() throws {
        final class Pairs: BatchSource {
            func partitionCount() throws -> Int { 1 }
            func available(partition: Int) throws -> Range<UInt64> { 0..<1 }
            func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
                var builder = BatchBuilder(keyed: true)
                builder.append(key: "a", value: "2")
                builder.append(key: "a", value: "x")
                builder.append("no key")
                builder.append(key: "b", value: "-5")
                return OwnedBatch(builder)
            }
            func commit(partition: Int, upTo offset: UInt64) throws {}
        }
        var graph = StreamGraph()
        let source = graph.add("pairs", .source(Pairs(), maxRecordsPerPartition: 10))
        let sums = graph.add("sums", .keyed(KeyedStage(KeyedOperator(.reduceByKey), partitions: 1), inputs: [source]))
        let sink = CollectingSink()
        graph.addSink(.init(name: "out", sink: sink, input: sums))
        let executor = BatchExecutor(graph: graph, parallelism: 1)
        let outcome = try executor.run(try executor.plan(positions: [:]), info: BatchInfo(id: 0, timeMilliseconds: 0))
        #expect(sink.batches[0] == ["(a,2)", "(b,-5)"])
        #expect(outcome.discarded == 2)
        #expect(outcome.firstDiscardReason?.contains("'x'") == true)
    }

    @Test func retryableSinkFailuresAreRetriedFromBegin() throws {
        var graph = StreamGraph()
        let source = graph.add("lines", .source(MemorySource([["a", "b"]]), maxRecordsPerPartition: 10))
        let sink = CollectingSink(failures: 2)
        graph.addSink(.init(name: "out", sink: sink, input: source))
        let executor = BatchExecutor(graph: graph, parallelism: 1)
        executor.sinkRetryBackoffMilliseconds = 1
        _ = try executor.run(try executor.plan(positions: [:]), info: BatchInfo(id: 0, timeMilliseconds: 0))
        #expect(sink.batches[0] == ["a", "b"], "the committed batch holds each record once")
        #expect(sink.state.withLock { $0.begins } == 3)
    }

    @Test func fatalSinkFailureFailsTheBatchNamingTheSink() throws {
        var graph = StreamGraph()
        let source = graph.add("lines", .source(MemorySource([["a"]]), maxRecordsPerPartition: 10))
        let sink = CollectingSink(failures: 1, retryable: false)
        graph.addSink(.init(name: "archive", sink: sink, input: source))
        let executor = BatchExecutor(graph: graph, parallelism: 1)
        let error = #expect(throws: BatchError.self) {
            _ = try executor.run(try executor.plan(positions: [:]), info: BatchInfo(id: 0, timeMilliseconds: 0))
        }
        #expect(error?.stage == "archive")
        #expect(sink.batches.isEmpty, "nothing was committed")
    }

    @Test func aBatchFreesEverythingItMadeOnceItIsDone() throws {
        /// Keeps weak references to every chunk it is given.
        final class WeakSink: BatchSink, @unchecked Sendable {  // used from the scheduling thread only
            struct Weak { weak var batch: OwnedBatch? }
            var seen: [Weak] = []
            func begin(_ info: BatchInfo) throws {}
            func write(_ chunk: OwnedBatch) throws { seen.append(Weak(batch: chunk)) }
            func commit(_ info: BatchInfo) throws {}
        }
        var graph = StreamGraph()
        let lines = (0..<200).map { "w\($0 % 17) w\($0 % 5)" }
        let source = graph.add("lines", .source(MemorySource([lines, lines]), maxRecordsPerPartition: 1_000))
        let words = graph.add("words", .transform(WordsTransform(), input: source))
        let counts = graph.add("counts", .keyed(KeyedStage(KeyedOperator(.countByValue), partitions: 2), inputs: [words]))
        let sums = graph.add(
            "sums", .keyed(KeyedStage(KeyedOperator(.reduceByKeyAndWindow, window: 2, inverse: true), partitions: 2), inputs: [counts])
        )
        let sink = WeakSink()
        graph.addSink(.init(name: "words", sink: sink, input: words))
        graph.addSink(.init(name: "counts", sink: sink, input: counts))
        graph.addSink(.init(name: "sums", sink: sink, input: sums))
        let executor = BatchExecutor(graph: graph, parallelism: 2, taskSize: 16)
        _ = try executor.run(try executor.plan(positions: [:]), info: BatchInfo(id: 0, timeMilliseconds: 0))
        #expect(sink.seen.count > 6, "several tasks and partitions wrote chunks")
        let alive = sink.seen.filter { $0.batch != nil }.count
        #expect(alive == 0, "\(alive) of \(sink.seen.count) chunks outlived their batch")
    }
}
