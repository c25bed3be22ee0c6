import Foundation
import PropertyBased
import Sluice
import Synchronization
import Testing

/// The typed Swift API builds the same graph as the pipeline file: its operations give the results Spark's would.
struct DStreamTests {
    /// Lines served batch by batch: batch n is `batches[n]`.
    final class Lines: BatchSource, @unchecked Sendable {  // `released` is advanced by `available` from one thread
        let batches: [[String]]
        private var released = 0
        private var ends: [Int]
        init(_ batches: [[String]]) {
            self.batches = batches
            var end = 0
            ends = batches.map { end += $0.count; return end }
        }
        func partitionCount() throws -> Int { 1 }
        func available(partition: Int) throws -> Range<UInt64> {
            // One more batch's lines become available on each call (the executor asks once per batch).
            defer { released += 1 }
            return 0..<UInt64(released < ends.count ? ends[released] : ends.last ?? 0)
        }
        func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
            let all = batches.flatMap { $0 }
            var builder = BatchBuilder()
            for i in offsets { builder.append(all[Int(i)]) }
            return OwnedBatch(builder)
        }
        func commit(partition: Int, upTo offset: UInt64) throws {}
    }

    /// Collects each batch's elements.
    final class Collected<T: Sendable>: Sendable {
        let batches = Mutex<[UInt64: [T]]>([:])
        func record(_ info: BatchInfo, _ elements: [T]) { batches.withLock { $0[info.id] = elements } }
        var all: [[T]] { batches.withLock { b in (0..<UInt64(b.count)).map { b[$0] ?? [] } } }
    }

    static let text = [["a b a", "c"], ["b b"], [], ["a c c c"]]

    @Test func wordCountWithAClosureEqualsCountByValue() throws {
        let context = StreamingContext(batchInterval: .milliseconds(1))
        let words = context.source(Lines(Self.text)).flatMap { $0.split(separator: " ").map(String.init) }
        let closure = Collected<Pair<Int64>>()
        let builtIn = Collected<Pair<Int64>>()
        words.map { Pair($0, Int64(1)) }.reduceByKey(+).foreachBatch(closure.record)
        words.countByValue().foreachBatch(builtIn.record)
        let summary = try context.run(batches: 4)
        #expect(summary.batches == 4)
        #expect(summary.records == 4)
        let sorted = { (batches: [[Pair<Int64>]]) in batches.map { $0.sorted { $0.key < $1.key } } }
        #expect(sorted(closure.all) == [[Pair("a", 2), Pair("b", 1), Pair("c", 1)], [Pair("b", 2)], [], [Pair("a", 1), Pair("c", 3)]])
        #expect(sorted(closure.all) == sorted(builtIn.all))
    }

    @Test func windowsWithAndWithoutInverseAgree() throws {
        let context = StreamingContext(batchInterval: .milliseconds(1))
        let pairs = context.source(Lines(Self.text)).flatMap { $0.split(separator: " ").map { Pair(String($0), Int64(1)) } }
        let inverse = Collected<Pair<Int64>>()
        let recomputed = Collected<Pair<Int64>>()
        pairs.reduceByKeyAndWindow(+, inverse: -, .milliseconds(2)).foreachBatch(inverse.record)
        pairs.reduceByKeyAndWindow(.sum, .milliseconds(2)).foreachBatch(recomputed.record)
        try context.run(batches: 4)
        let sorted = { (batches: [[Pair<Int64>]]) in batches.map { $0.sorted { $0.key < $1.key } } }
        #expect(sorted(inverse.all) == sorted(recomputed.all))
        // Batches 2 and 3 of the window: "" and "a c c c"; the b's of batch 1 have left.
        #expect(sorted(inverse.all)[3] == [Pair("a", 1), Pair("c", 3)])
        #expect(sorted(inverse.all)[2] == [Pair("b", 2)])
    }

    @Test func joinsAndGroupsGiveTypedValuesAndFilterAndCount() throws {
        let context = StreamingContext(batchInterval: .milliseconds(1))
        let left = context.source(Lines([["1 x", "2 y"]])).map { line -> Pair<String> in
            let parts = line.split(separator: " ")
            return Pair(String(parts[0]), String(parts[1]))
        }
        let right = context.source(Lines([["2 z", "3 w"]])).map { line -> Pair<String> in
            let parts = line.split(separator: " ")
            return Pair(String(parts[0]), String(parts[1]))
        }
        let joined = Collected<Pair<Joined<String, String>>>()
        let leftOuter = Collected<Pair<Joined<String, String?>>>()
        let rightOuter = Collected<Pair<Joined<String?, String>>>()
        let outer = Collected<Pair<Joined<String?, String?>>>()
        let cogrouped = Collected<Pair<Joined<[String], [String]>>>()
        let grouped = Collected<Pair<[String]>>()
        let counted = Collected<Int64>()
        left.join(right).foreachBatch(joined.record)
        left.leftOuterJoin(right).foreachBatch(leftOuter.record)
        left.rightOuterJoin(right).foreachBatch(rightOuter.record)
        left.fullOuterJoin(right).foreachBatch(outer.record)
        left.cogroup(right).foreachBatch(cogrouped.record)
        left.union(right).groupByKey().foreachBatch(grouped.record)
        left.filter { $0.key != "1" }.count().foreachBatch(counted.record)
        try context.run(batches: 1)
        func byKey<V>(_ pairs: [Pair<V>]) -> [Pair<V>] { pairs.sorted { $0.key < $1.key } }
        // Spark's shapes as Swift values: (V, W), (V, Option[W]), (Option[V], W), (Option[V], Option[W]), ([V], [W]), [V].
        #expect(joined.all[0] == [Pair("2", Joined("y", "z"))])
        #expect(byKey(leftOuter.all[0]) == [Pair("1", Joined("x", nil)), Pair("2", Joined("y", "z"))])
        #expect(byKey(rightOuter.all[0]) == [Pair("2", Joined("y", "z")), Pair("3", Joined(nil, "w"))])
        #expect(byKey(outer.all[0]) == [Pair("1", Joined("x", nil)), Pair("2", Joined("y", "z")), Pair("3", Joined(nil, "w"))])
        #expect(byKey(cogrouped.all[0]) == [Pair("1", Joined(["x"], [])), Pair("2", Joined(["y"], ["z"])), Pair("3", Joined([], ["w"]))])
        #expect(byKey(grouped.all[0]).map { Pair($0.key, $0.value.sorted()) } == [Pair("1", ["x"]), Pair("2", ["y", "z"]), Pair("3", ["w"])])
        let (v, w) = try #require(joined.all[0].first).value.tuple
        #expect(v == "y" && w == "z")
        #expect(counted.all[0] == [1])
    }

    @Test func aPluginSourceAndTransformByName() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/wordcount/data")
        let context = StreamingContext(batchInterval: .milliseconds(1))
        let lines = try context.source(plugin: "file-watch", config: #"{"directory": "\#(directory.path)", "start": "earliest"}"#)
        let words = try lines.transform(plugin: "split", config: #"{"lowercase": true}"#)
        let counted = Collected<Int64>()
        words.count().foreachBatch(counted.record)
        let summary = try context.run(untilIdle: 1)
        #expect(summary.records == 35)
        #expect((counted.all.first?.first ?? 0) > 300)
        #expect(throws: StreamingError.self) { _ = try context.source(plugin: "file-wach") }
    }

    @Test func narrowOperationsAgreeWithSwiftArrays() async {
        // Lines of small numbers; the closures run in the engine's tasks, on batches cut at random places.
        let lines = Gen.int(in: 0...99).array(of: 0...4).map { $0.map(String.init).joined(separator: " ") }.array(of: 0...6).array(of: 1...6)
        await propertyCheck(count: 60, input: lines, Gen.int(in: 2...7)) { batches, divisor in
            let context = StreamingContext(batchInterval: .milliseconds(1), parallelism: 2)
            let numbers = context.source(Lines(batches)).flatMap { $0.split(separator: " ").compactMap { Int64($0) } }
            let kept = Collected<Int64>()
            let squared = Collected<Int64>()
            let sums = Collected<Int64>()
            numbers.filter { $0 % Int64(divisor) == 0 }.foreachBatch(kept.record)
            numbers.map { $0 * $0 }.foreachBatch(squared.record)
            numbers.reduce(.sum).foreachBatch(sums.record)
            try context.run(batches: batches.count)
            try #require(kept.all.count == batches.count && squared.all.count == batches.count && sums.all.count == batches.count)
            for (n, batch) in batches.enumerated() {
                let expected = batch.flatMap { $0.split(separator: " ").compactMap { Int64($0) } }
                #expect(kept.all[n] == expected.filter { $0 % Int64(divisor) == 0 })
                #expect(squared.all[n] == expected.map { $0 * $0 })
                #expect(sums.all[n] == (expected.isEmpty ? [] : [expected.reduce(0, +)]))
            }
        }
    }
}
