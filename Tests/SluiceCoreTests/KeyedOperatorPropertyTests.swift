import PropertyBased
import SluiceCore
import SluiceSDK
import Synchronization
import Testing

/// Every keyed operator, run by the engine over random streams, against a naive reference that recomputes each
/// output from the raw records (no state, no partial aggregates, no inverses).
struct KeyedOperatorPropertyTests {
    /// One record of a generated stream: a key of a few, a small signed integer value.
    struct Rec: Sendable, CustomStringConvertible {
        var key: String
        var value: Int64
        init(_ code: Int) {
            key = "k\(code % 6)"
            value = Int64(code / 6) - 5
        }
        var description: String { "\(key)=\(value)" }
    }

    /// Random streams: 1...12 batches of 0...9 records.
    static let streams = Gen.int(in: 0...65).array(of: 0...9).array(of: 1...12)
        .map { batches in batches.map { $0.map(Rec.init) } }

    // MARK: The engine

    /// A source that serves the stream batch by batch: `available` reaches the end of batch `n` once the test says so.
    final class StreamSource: BatchSource {
        let records: [Rec]
        let ends: [Int]
        let released = Atomic<Int>(0)
        init(_ batches: [[Rec]]) {
            records = batches.flatMap { $0 }
            var end = 0
            ends = batches.map { batch in
                end += batch.count
                return end
            }
        }
        func partitionCount() throws -> Int { 1 }
        func available(partition: Int) throws -> Range<UInt64> {
            0..<UInt64(ends[released.load(ordering: .relaxed)])
        }
        func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
            var builder = BatchBuilder(keyed: true)
            for i in offsets { builder.append(key: records[Int(i)].key, value: String(records[Int(i)].value)) }
            return OwnedBatch(builder)
        }
        func commit(partition: Int, upTo offset: UInt64) throws {}
    }

    /// Runs `stage` over batches `range` of `batches` and returns each batch's output, sorted.
    static func run(_ stage: KeyedStage, _ batches: [[Rec]], _ range: Range<Int>) throws -> [[String]] {
        let source = StreamSource(batches)
        var graph = StreamGraph()
        let input = graph.add("records", .source(source, maxRecordsPerPartition: 1_000))
        let keyed = graph.add("op", .keyed(stage, inputs: [input]))
        let sink = CollectingSink()
        graph.addSink(.init(name: "out", sink: sink, input: keyed))
        let executor = BatchExecutor(graph: graph, parallelism: 2, taskSize: 3)
        var positions: [PartitionKey: UInt64] = [PartitionKey(source: input, partition: 0): UInt64(range.lowerBound == 0 ? 0 : source.ends[range.lowerBound - 1])]
        for n in range {
            source.released.store(n, ordering: .relaxed)
            let plan = try executor.plan(positions: positions)
            _ = try executor.run(plan, info: BatchInfo(id: UInt64(n), timeMilliseconds: Int64(n) * 1000))
            positions.merge(plan.endPositions) { $1 }
        }
        return range.map { (sink.batches[UInt64($0)] ?? []).sorted() }
    }

    // MARK: The reference

    static func reduce(_ values: [Int64], _ function: ReduceFunction) -> String {
        switch function {
        case .sum: return String(values.reduce(0, +))
        case .count: return String(values.count)
        case .min: return String(values.min()!)
        case .max: return String(values.max()!)
        case .mean: return String(Double(values.reduce(0, +)) / Double(values.count))
        case .first: return String(values.first!)
        case .last: return String(values.last!)
        }
    }

    /// mapWithState, simulated key by key: a key's state holds its values since it was (re)created; it is emitted
    /// in the batches that have its records, and forgotten once more than `timeout` batches have passed since its
    /// last records — checked after the batch's records are applied (Spark's rule).
    static func expectedMapWithState(_ op: KeyedOperator, _ batches: [[Rec]], _ n: Int) -> [String] {
        var values: [String: [Int64]] = [:]
        var lastSeen: [String: Int] = [:]
        var emitted: [String] = []
        for m in 0...n {
            for record in batches[m] {
                values[record.key, default: []].append(record.value)
                lastSeen[record.key] = m
            }
            if m == n {
                emitted = Set(batches[m].map(\.key)).map { "(\($0),\(reduce(values[$0]!, op.function)))" }
                    .filter { !(op.dropZero && Double($0.split(separator: ",").last!.dropLast()) == 0) }
            }
            if op.timeout > 0 {
                for (key, last) in lastSeen where m - last > op.timeout {
                    values[key] = nil
                    lastSeen[key] = nil
                }
            }
        }
        return emitted.sorted()
    }

    /// What `op` must emit for batch `n`, sorted; recomputed from the raw records.
    static func expected(_ op: KeyedOperator, _ batches: [[Rec]], _ n: Int) -> [String] {
        if op.kind == .mapWithState { return expectedMapWithState(op, batches, n) }
        if op.kind.isWindowed && (n + 1) % op.slide != 0 { return [] }
        let covered: ArraySlice<[Rec]>
        switch op.kind {
        case .updateStateByKey: covered = batches[0...n]
        case _ where op.kind.isWindowed: covered = batches[max(0, n - op.window + 1)...n]
        default: covered = batches[n...n]
        }
        let records = covered.flatMap { $0 }
        let isZero = { (text: String) in op.dropZero && Double(text) == 0 }
        switch op.kind {
        case .count, .countByWindow:
            // countByWindow counts nothing until a slide whose window holds a record (Spark's key appears then).
            if op.kind == .countByWindow && records.isEmpty {
                let slidesSoFar = stride(from: op.slide - 1, through: n, by: op.slide)
                if !slidesSoFar.contains(where: { !batches[max(0, $0 - op.window + 1)...$0].joined().isEmpty }) { return [] }
            }
            let text = String(records.count)
            return isZero(text) ? [] : [text]
        case .reduce, .reduceByWindow:
            guard !records.isEmpty else { return [] }
            let text = reduce(records.map(\.value), op.function)
            return isZero(text) ? [] : [text]
        case .countByValue, .countByValueAndWindow:
            // Whole records are counted, as Spark counts whole elements: ((key,value),count).
            let groups = Dictionary(grouping: records, by: { "(\($0.key),\($0.value))" })
            return groups.map { ($0.key, String($0.value.count)) }.filter { !isZero($0.1) }.map { "(\($0.0),\($0.1))" }.sorted()
        case .reduceByKey, .reduceByKeyAndWindow, .updateStateByKey, .mapWithState:
            let groups = Dictionary(grouping: records, by: \.key)
            return groups.map { ($0.key, reduce($0.value.map(\.value), op.function)) }.filter { !isZero($0.1) }
                .map { "(\($0.0),\($0.1))" }.sorted()
        }
    }

    static func operators(kind: KeyedOperator.Kind, function: ReduceFunction, window: Int, slide: Int, dropZero: Bool)
        -> [KeyedOperator]
    {
        var result = [KeyedOperator(kind, function: function, window: window, slide: slide, dropZero: dropZero)]
        if kind.isWindowed && result[0].function.hasInverse {
            result.append(KeyedOperator(kind, function: function, window: window, slide: slide, inverse: true, dropZero: dropZero))
        }
        return result
    }

    // MARK: Properties

    @Test(arguments: KeyedOperator.Kind.allCases)
    func operatorAgreesWithTheNaiveReference(kind: KeyedOperator.Kind) async {
        await propertyCheck(
            count: 60,
            input: Self.streams,
            Gen.element(of: ReduceFunction.allCases).map { $0 ?? .sum },
            Gen.int(in: 1...4),
            Gen.int(in: 1...3),
            Gen.int(in: 1...3),
            Gen.bool
        ) { batches, function, window, slide, partitions, dropZero in
            for op in Self.operators(kind: kind, function: function, window: window, slide: slide, dropZero: dropZero) {
                let got = try Self.run(KeyedStage(op, partitions: partitions), batches, 0..<batches.count)
                for n in batches.indices {
                    #expect(got[n] == Self.expected(op, batches, n), "\(op), partitions \(partitions), batch \(n) of \(batches)")
                }
            }
        }
    }

    @Test func mapWithStateEmitsTouchedKeysAndForgetsIdleOnes() async {
        await propertyCheck(
            count: 80,
            input: Self.streams,
            Gen.element(of: ReduceFunction.allCases).map { $0 ?? .sum },
            Gen.int(in: 0...3),
            Gen.int(in: 1...3),
            Gen.bool
        ) { batches, function, timeout, partitions, cut in
            let op = KeyedOperator(.mapWithState, function: function, timeout: timeout)
            let got = try Self.run(KeyedStage(op, partitions: partitions), batches, 0..<batches.count)
            for n in batches.indices {
                #expect(got[n] == Self.expected(op, batches, n), "\(op), batch \(n) of \(batches)")
            }
            // And through a snapshot taken half way.
            if cut {
                let split = batches.count / 2
                let before = KeyedStage(op, partitions: partitions)
                let first = try Self.run(before, batches, 0..<split)
                let after = KeyedStage(op, partitions: 1 + partitions % 3)
                #expect(throws: Never.self) { try after.restore(before.snapshot()) }
                let second = try Self.run(after, batches, split..<batches.count)
                #expect(first + second == got)
            }
        }
    }

    @Test(arguments: [KeyedOperator.Kind.reduceByKeyAndWindow, .countByValueAndWindow, .countByWindow, .reduceByWindow])
    func inverseAndRecomputedWindowsAgree(kind: KeyedOperator.Kind) async {
        await propertyCheck(count: 60, input: Self.streams, Gen.int(in: 1...6), Gen.int(in: 1...3), Gen.element(of: [ReduceFunction.sum, .count, .mean]).map { $0 ?? .sum }) {
            batches, window, slide, function in
            let plain = KeyedOperator(kind, function: function, window: window, slide: slide)
            let inverse = KeyedOperator(kind, function: function, window: window, slide: slide, inverse: true)
            let a = try Self.run(KeyedStage(plain, partitions: 2), batches, 0..<batches.count)
            let b = try Self.run(KeyedStage(inverse, partitions: 2), batches, 0..<batches.count)
            #expect(a == b, "\(kind) window \(window) slide \(slide) \(function) over \(batches)")
        }
    }

    @Test(arguments: [KeyedOperator.Kind.updateStateByKey, .reduceByKeyAndWindow, .countByValueAndWindow, .reduceByWindow, .countByWindow])
    func snapshotRestoreContinueEqualsNeverStopping(kind: KeyedOperator.Kind) async {
        await propertyCheck(
            count: 50,
            input: Self.streams,
            Gen.int(in: 0...12),
            Gen.int(in: 1...3),
            Gen.int(in: 1...3),
            Gen.element(of: [ReduceFunction.sum, .max, .last, .mean]).map { $0 ?? .sum },
            Gen.bool
        ) { batches, cut, partitionsBefore, partitionsAfter, function, inverse in
            let op = KeyedOperator(kind, function: function, window: 3, slide: 2, inverse: inverse && function.hasInverse)
            let split = min(cut, batches.count)
            let whole = try Self.run(KeyedStage(op, partitions: partitionsBefore), batches, 0..<batches.count)
            let before = KeyedStage(op, partitions: partitionsBefore)
            let first = try Self.run(before, batches, 0..<split)
            let after = KeyedStage(op, partitions: partitionsAfter)
            #expect(throws: Never.self) { try after.restore(before.snapshot()) }
            let second = try Self.run(after, batches, split..<batches.count)
            #expect(first + second == whole, "\(op), cut after \(split), partitions \(partitionsBefore) -> \(partitionsAfter)")
        }
    }

    /// A custom reducer as a library or plugin would supply it: integer sum, with its inverse, counting its calls.
    final class CustomSum: CustomReducer, @unchecked Sendable {  // `calls` is only read after the run
        let name = "test.sum"
        let valueType = ReducerValueType.int64
        let hasInverse = true
        var calls = 0
        func combine(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws {
            calls += 1
            for i in 0..<n { out[i] = UInt64(bitPattern: Int64(bitPattern: a[i]) &+ Int64(bitPattern: b[i])) }
        }
        func invert(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws {
            for i in 0..<n { out[i] = UInt64(bitPattern: Int64(bitPattern: a[i]) &- Int64(bitPattern: b[i])) }
        }
    }

    @Test(arguments: [KeyedOperator.Kind.reduceByKey, .reduce, .reduceByWindow, .reduceByKeyAndWindow, .updateStateByKey])
    func aCustomReducerAgreesWithTheBuiltInSum(kind: KeyedOperator.Kind) async {
        await propertyCheck(count: 50, input: Self.streams, Gen.int(in: 1...4), Gen.int(in: 1...3), Gen.int(in: 1...3), Gen.bool) {
            batches, window, slide, partitions, inverse in
            let builtIn = KeyedOperator(kind, function: .sum, window: window, slide: slide, inverse: inverse)
            let custom = KeyedOperator(kind, window: window, slide: slide, inverse: inverse, custom: CustomSum())
            let expected = try Self.run(KeyedStage(builtIn, partitions: partitions), batches, 0..<batches.count)
            let got = try Self.run(KeyedStage(custom, partitions: partitions), batches, 0..<batches.count)
            #expect(got == expected, "\(custom) over \(batches)")
        }
    }

    @Test func aCustomReducerIsCalledOncePerTreeLevelNotPerRecord() throws {
        // 1,000 records of 3 keys in one task: ⌈log₂ 334⌉ = 9 levels, then merging into the partition.
        let reducer = CustomSum()
        let batch = (0..<1000).map { Rec($0 % 3) }
        let op = KeyedOperator(.reduceByKey, custom: reducer)
        var graph = StreamGraph()
        let input = graph.add("in", .source(StreamSource([batch]), maxRecordsPerPartition: 10_000))
        let stage = graph.add("op", .keyed(KeyedStage(op, partitions: 1), inputs: [input]))
        let sink = CollectingSink()
        graph.addSink(.init(name: "out", sink: sink, input: stage))
        let executor = BatchExecutor(graph: graph, parallelism: 1, taskSize: 10_000)
        _ = try executor.run(try executor.plan(positions: [:]), info: BatchInfo(id: 0, timeMilliseconds: 0))
        #expect(sink.batches[0]?.sorted() == Self.expected(KeyedOperator(.reduceByKey, function: .sum), [batch], 0))
        #expect(reducer.calls <= 10, "\(reducer.calls) calls")
    }

    // MARK: Examples

    @Test func textValuesForMinMaxFirstLast() throws {
        final class Words: BatchSource {
            func partitionCount() throws -> Int { 1 }
            func available(partition: Int) throws -> Range<UInt64> { 0..<5 }
            func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
                var builder = BatchBuilder(keyed: true)
                for (key, value) in [("a", "pear"), ("a", "apple"), ("b", "7"), ("a", "zoo"), ("b", "fig")][Int(offsets.lowerBound)..<Int(offsets.upperBound)] {
                    builder.append(key: key, value: value)
                }
                return OwnedBatch(builder)
            }
            func commit(partition: Int, upTo offset: UInt64) throws {}
        }
        for (function, expected) in [
            (ReduceFunction.min, ["(a,apple)", "(b,7)"]), (.max, ["(a,zoo)", "(b,fig)"]),
            (.first, ["(a,pear)", "(b,7)"]), (.last, ["(a,zoo)", "(b,fig)"]),
        ] {
            var graph = StreamGraph()
            let source = graph.add("words", .source(Words(), maxRecordsPerPartition: 100))
            let op = graph.add("op", .keyed(KeyedStage(KeyedOperator(.reduceByKey, function: function), partitions: 2), inputs: [source]))
            let sink = CollectingSink()
            graph.addSink(.init(name: "out", sink: sink, input: op))
            let executor = BatchExecutor(graph: graph, parallelism: 2, taskSize: 1)
            _ = try executor.run(try executor.plan(positions: [:]), info: BatchInfo(id: 0, timeMilliseconds: 0))
            #expect(sink.batches[0]?.sorted() == expected, "\(function)")
        }
    }

    @Test func aSnapshotOfAnotherOperatorIsRefused() throws {
        let a = KeyedStage(KeyedOperator(.reduceByKeyAndWindow, function: .sum, window: 3), partitions: 1)
        let b = KeyedStage(KeyedOperator(.reduceByKeyAndWindow, function: .sum, window: 4), partitions: 1)
        let error = #expect(throws: SnapshotError.self) { try b.restore(a.snapshot()) }
        #expect(error?.description.contains("window=3") == true)
        let truncated = Array(a.snapshot().dropLast(3))
        #expect(throws: SnapshotError.self) { try a.restore(truncated) }
        #expect(throws: SnapshotError.self) { try a.restore(Array("not a snapshot".utf8)) }
    }
}
