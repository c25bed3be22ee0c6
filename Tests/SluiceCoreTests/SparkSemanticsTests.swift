import SluiceCore
import SluiceSDK
import Synchronization
import Testing

/// Operators on the inputs of issue 14, where Sluice once differed from Spark Streaming 3.5. The expected batches are
/// what Spark computes (run side by side with PySpark `queueStream` and a Scala `mapWithState` program), written out.
struct SparkSemanticsTests {
    /// One line per batch, at a 1 s interval.
    static let lines = ["", "x y z x", "", "z", "x", "", ""]

    /// A source that serves one line per batch: `available` reaches the end of batch `n` once the test says so.
    final class OneLinePerBatch: BatchSource {
        let lines: [String]
        let released = Atomic<Int>(0)
        init(_ lines: [String]) { self.lines = lines }
        func partitionCount() throws -> Int { 1 }
        func available(partition: Int) throws -> Range<UInt64> { 0..<UInt64(released.load(ordering: .relaxed) + 1) }
        func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
            var builder = BatchBuilder()
            for i in offsets { builder.append(lines[Int(i)]) }
            return OwnedBatch(builder)
        }
        func commit(partition: Int, upTo offset: UInt64) throws {}
    }

    /// What one run of a stage gave: each batch's output records (sorted) and the keys in its state after it.
    struct Run: Equatable {
        var batches: [[String]] = []
        var stateKeys: [Int] = []
    }

    /// Runs `stage` over batches `range` of `lines`, split into words (or `(word,1)` pairs), batch by batch.
    static func run(_ stage: KeyedStage, _ lines: [String], pairs: Bool, _ range: Range<Int>? = nil) throws -> Run {
        let range = range ?? lines.indices
        let source = OneLinePerBatch(lines)
        var graph = StreamGraph()
        let input = graph.add("lines", .source(source, maxRecordsPerPartition: 1_000))
        let words = graph.add("words", .transform(WordsTransform(pairs: pairs), input: input))
        let keyed = graph.add("op", .keyed(stage, inputs: [words]))
        let sink = CollectingSink()
        graph.addSink(.init(name: "out", sink: sink, input: keyed))
        let executor = BatchExecutor(graph: graph, parallelism: 2, taskSize: 1)
        var positions = [PartitionKey(source: input, partition: 0): UInt64(range.lowerBound)]
        var result = Run()
        for n in range {
            source.released.store(n, ordering: .relaxed)
            let plan = try executor.plan(positions: positions)
            _ = try executor.run(plan, info: BatchInfo(id: UInt64(n), timeMilliseconds: Int64(n) * 1000))
            positions.merge(plan.endPositions) { $1 }
            result.batches.append((sink.batches[UInt64(n)] ?? []).sorted())
            result.stateKeys.append(stage.stateKeys)
        }
        return result
    }

    // MARK: mapWithState timeouts

    /// Spark's `MapWithStateRDDRecord.updateRecordWithData`: the batch's records update their keys first (stamping
    /// them with the batch time), then the keys whose last update is strictly older than batch time − timeout are
    /// removed. With a 1 s timeout, z (last updated at 1 s) is still there at 3 s, where its record makes it 2;
    /// x and y go at 3 s (1 < 3 − 1), z at 5 s, x (renewed at 4 s) at 6 s.
    @Test(arguments: [1, 3])
    func mapWithStateTimesOutAKeyOnlyWhenItsLastUpdateIsMoreThanTheTimeoutOld(partitions: Int) throws {
        let op = KeyedOperator(.mapWithState, function: .sum, timeout: 1)
        let got = try Self.run(KeyedStage(op, partitions: partitions), Self.lines, pairs: true)
        #expect(got.batches == [[], ["(x,2)", "(y,1)", "(z,1)"], [], ["(z,2)"], ["(x,1)"], [], []])
        #expect(got.stateKeys == [0, 3, 3, 1, 2, 1, 0])
    }

    /// The same with a 2 s timeout: x (last updated at 1 s) is not yet timed out at 4 s (1 is not < 4 − 2), and the
    /// record of 4 s is applied before the check, so x continues to 3; y goes at 4 s, z (updated at 3 s) at 6 s.
    @Test func mapWithStateAppliesTheBatchBeforeTimingOut() throws {
        let op = KeyedOperator(.mapWithState, function: .sum, timeout: 2)
        let got = try Self.run(KeyedStage(op, partitions: 2), Self.lines, pairs: true)
        #expect(got.batches == [[], ["(x,2)", "(y,1)", "(z,1)"], [], ["(z,2)"], ["(x,3)"], [], []])
        #expect(got.stateKeys == [0, 3, 3, 3, 2, 2, 1])
    }

    // MARK: countByValue on keyed records

    /// Spark's `countByValue` is `map((_, 1L)).reduceByKey(_ + _)` over whole elements: on `(word,1)` pairs it counts
    /// the pairs, so `(x,1)` twice is `((x,1),2)`.
    @Test func countByValueCountsWholeKeyedRecords() throws {
        let got = try Self.run(KeyedStage(KeyedOperator(.countByValue), partitions: 2), Self.lines, pairs: true)
        #expect(got.batches == [[], ["((x,1),2)", "((y,1),1)", "((z,1),1)"], [], ["((z,1),1)"], ["((x,1),1)"], [], []])
        // Unkeyed words are counted as themselves, as before.
        let words = try Self.run(KeyedStage(KeyedOperator(.countByValue), partitions: 2), Self.lines, pairs: false)
        #expect(words.batches[1] == ["(x,2)", "(y,1)", "(z,1)"])
    }

    /// Spark's `countByValueAndWindow` counts whole elements over the window, and drops values whose count falls to
    /// 0 (its filter `_._2 != 0`). Window 2 s, slide 1 s.
    @Test(arguments: [false, true])
    func countByValueAndWindowCountsWholeKeyedRecords(inverse: Bool) throws {
        let op = KeyedOperator(.countByValueAndWindow, window: 2, slide: 1, inverse: inverse)
        let got = try Self.run(KeyedStage(op, partitions: 2), Self.lines, pairs: true)
        #expect(
            got.batches == [
                [], ["((x,1),2)", "((y,1),1)", "((z,1),1)"], ["((x,1),2)", "((y,1),1)", "((z,1),1)"], ["((z,1),1)"],
                ["((x,1),1)", "((z,1),1)"], ["((x,1),1)"], [],
            ]
        )
    }

    // MARK: countByWindow before any data

    /// Spark's `countByWindow` is `map(_ => 1L).reduceByWindow(_ + _, _ - _)`, a reduceByKeyAndWindow under one key
    /// with no filter: the key appears with the first record in a window and then stays, so there is no count before
    /// it (batch 0 here) and a count of 0 for a window emptied after it (batch 6). Window 2 s, slide 1 s.
    @Test(arguments: [false, true])
    func countByWindowSaysNothingBeforeTheFirstRecordAndZeroAfter(inverse: Bool) throws {
        let op = KeyedOperator(.countByWindow, window: 2, slide: 1, inverse: inverse)
        let got = try Self.run(KeyedStage(op, partitions: 1), Self.lines, pairs: false)
        #expect(got.batches == [[], ["4"], ["4"], ["1"], ["2"], ["1"], ["0"]])
        // Two more batches without data at the start and two at the end, slide 2 s: the first slide's window (batches
        // 0 and 1) never held a record, the last one (8 and 9) held none but comes after records.
        let slid = KeyedOperator(.countByWindow, window: 2, slide: 2, inverse: inverse)
        let late = try Self.run(KeyedStage(slid, partitions: 1), ["", ""] + Self.lines + ["", ""], pairs: false)
        #expect(late.batches == [[], [], [], ["4"], [], ["1"], [], ["1"], [], ["0"], []])
    }

    /// Whether the window has held a record is state: a stage restored from a snapshot taken after the data left
    /// the window goes on saying 0, one restored from a snapshot taken before any data says nothing.
    @Test(arguments: [false, true])
    func countByWindowKeepsWhetherItHeldARecordThroughASnapshot(inverse: Bool) throws {
        let op = KeyedOperator(.countByWindow, window: 2, slide: 1, inverse: inverse)
        let lines = Self.lines + ["", ""]
        let whole = try Self.run(KeyedStage(op, partitions: 1), lines, pairs: false).batches
        #expect(whole == [[], ["4"], ["4"], ["1"], ["2"], ["1"], ["0"], ["0"], ["0"]])
        for cut in [1, 7] {
            let before = KeyedStage(op, partitions: 1)
            let first = try Self.run(before, lines, pairs: false, 0..<cut).batches
            let after = KeyedStage(op, partitions: 1)
            try after.restore(before.snapshot())
            let second = try Self.run(after, lines, pairs: false, cut..<lines.count).batches
            #expect(first + second == whole, "cut after batch \(cut - 1)")
        }
    }
}
