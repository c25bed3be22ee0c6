import PropertyBased
import SluiceCore
import SluiceSDK
import Testing

/// `StateFunctionStage`: a user's function over per-key state, run by the engine batch by batch, against Spark's
/// rules for `updateStateByKey(f)` and `mapWithState(spec)`.
struct StateFunctionStageTests {
    typealias Rec = KeyedOperatorPropertyTests.Rec

    static func rec(_ key: String, _ value: Int64 = 1) -> Rec {
        var record = Rec(0)
        record.key = key
        record.value = value
        return record
    }

    /// The words of one line per batch, each as (word, 1).
    static func pairs(_ lines: [String]) -> [[Rec]] {
        lines.map { $0.split(separator: " ").map { rec(String($0)) } }
    }

    /// A running sum per key, its state an Int64's 8 bytes.
    ///
    /// As updateStateByKey's `f(values, state)`: emits (key, sum) for every key it keeps; a sum above `dropAbove`
    /// removes the key, and a key called without values loses 1 (so idle keys age, which only works if the stage
    /// calls them). As mapWithState's function: emits (key, running sum) for each record, and (key, "timeout:sum")
    /// for a key timing out.
    final class RunningSum: KeyedStateFunction {
        let perRecord: Bool
        let dropAbove: Int64
        init(perRecord: Bool, dropAbove: Int64 = .max) {
            self.perRecord = perRecord
            self.dropAbove = dropAbove
        }
        var name: String { "test.running-sum(perRecord=\(perRecord),dropAbove=\(dropAbove))" }
        var outputType: ValueType { .bytes }
        var outputKeyed: Bool { true }

        static func decode(_ state: [UInt8]?) -> Int64? { state.map { $0.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) } } }
        static func encode(_ sum: Int64) -> [UInt8] { withUnsafeBytes(of: sum) { Array($0) } }

        static func emit(_ key: UnsafeRawBufferPointer, _ text: String, _ output: inout BatchBuilder) {
            output.append(key: String(decoding: key, as: UTF8.self), value: text)
        }

        func apply(key: UnsafeRawBufferPointer, values: KeyedValues, state: [UInt8]?, timingOut: Bool, output: inout BatchBuilder)
            throws -> StateChange
        {
            var sum = Self.decode(state)
            if timingOut {
                Self.emit(key, "timeout:\(sum ?? 0)", &output)
                return .keep
            }
            if values.isEmpty && !perRecord {
                guard let old = sum else { return .keep }
                sum = old - 1
            }
            for n in 0..<values.count {
                let (view, i) = values[n]
                sum = (sum ?? 0) + (view.integer(at: i) ?? 0)
                if perRecord { Self.emit(key, "\(sum!)", &output) }
            }
            guard let sum else { return .keep }
            if sum > dropAbove || sum <= 0 { return .remove }
            if !perRecord { Self.emit(key, "\(sum)", &output) }
            return .set(Self.encode(sum))
        }
    }

    static func run(_ mode: StateFunctionStage.Mode, _ function: any KeyedStateFunction, _ batches: [[Rec]], partitions: Int = 2)
        throws -> [[String]]
    {
        try CollectingStagePropertyTests.run([batches]) { graph, inputs in
            graph.add("state", .collecting(StateFunctionStage(mode, function: function, partitions: partitions), inputs: inputs))
        }
    }

    /// Spark's `mapWithState` with a 1-batch timeout (`timeout: 1s` at a 1 s interval) on the lines `""`, `"x y z x"`,
    /// `""`, `"z"`, `"x"`, `""`, `""`: z last updated at batch 1 is still there at batch 3 (1 < 3 − 1 is false at batch
    /// 2, and batch 3's record is applied before timing out), so Spark gives (z,2); x, updated at 1 and idle at 2 and
    /// 3, times out at batch 3 (1 < 3 − 1), and comes back fresh at batch 4 as (x,1).
    @Test func mapWithStateTimesOutAsSparkDoes() throws {
        let batches = Self.pairs(["", "x y z x", "", "z", "x", "", ""])
        let got = try Self.run(.mapWithState(timeout: 1), RunningSum(perRecord: true), batches)
        #expect(got == [
            [],
            ["(x,1)", "(x,2)", "(y,1)", "(z,1)"],
            [],
            ["(x,timeout:2)", "(y,timeout:1)", "(z,2)"],
            ["(x,1)"],
            ["(z,timeout:2)"],
            ["(x,timeout:1)"],
        ])
    }

    /// The same with a 2-batch timeout: x, last updated at batch 1, gets its record at batch 4 before it could time
    /// out (1 < 4 − 2 would hold, but the batch's records come first), so Spark gives (x,3).
    @Test func aKeyWithRecordsInTheBatchDoesNotTimeOut() throws {
        let batches = Self.pairs(["", "x y z x", "", "z", "x", "", ""])
        let got = try Self.run(.mapWithState(timeout: 2), RunningSum(perRecord: true), batches)
        #expect(got == [
            [],
            ["(x,1)", "(x,2)", "(y,1)", "(z,1)"],
            [],
            ["(z,2)"],
            ["(x,3)", "(y,timeout:1)"],
            [],
            ["(z,timeout:2)"],
        ])
    }

    /// Spark's `updateStateByKey(f)` calls f for every key with state, with the batch's values or none, and drops a
    /// key when f returns None; the output is every remaining key's state.
    @Test func updateStateByKeyCallsEveryKeyWithStateAndDropsTheRemoved() throws {
        let batches = Self.pairs(["a a b", "a", "", "c c c c", "b"])
        let got = try Self.run(.updateStateByKey, RunningSum(perRecord: false, dropAbove: 3), batches)
        #expect(got == [
            ["(a,2)", "(b,1)"],
            ["(a,3)"],  // b: 1 − 1 = 0 removes it
            ["(a,2)"],
            ["(a,1)"],  // c: 4 > 3 removes it at once
            ["(b,1)"],  // a: 0 removes it; b starts again
        ])
    }

    /// Random keyed streams: the stage's output equals a per-key reference fold, for any number of partitions.
    @Test func updateStateByKeyMatchesAReferenceFold() async {
        await propertyCheck(input: KeyedOperatorPropertyTests.streams, Gen.int(in: 1...4)) { batches, partitions in
            let got = try Self.run(.updateStateByKey, RunningSum(perRecord: false, dropAbove: 12), batches, partitions: partitions)
            var state: [String: Int64] = [:]
            var expected: [[String]] = []
            for batch in batches {
                var values: [String: [Int64]] = [:]
                var order: [String] = []
                for record in batch {
                    if values[record.key] == nil { order.append(record.key) }
                    values[record.key, default: []].append(record.value)
                }
                var out: [String] = []
                for key in Set(order).union(state.keys) {
                    var sum = state[key]
                    if let batchValues = values[key] {
                        sum = (sum ?? 0) + batchValues.reduce(0, +)
                    } else if let old = sum {
                        sum = old - 1
                    }
                    guard let value = sum else { continue }
                    if value > 12 || value <= 0 {
                        state[key] = nil
                    } else {
                        state[key] = value
                        out.append("(\(key),\(value))")
                    }
                }
                expected.append(out.sorted())
            }
            #expect(got == expected)
        }
    }

    /// A snapshot taken mid-stream and restored into a stage with another partition count continues exactly.
    @Test func aSnapshotRestoresIntoAnyPartitionCount() throws {
        let batches = Self.pairs(["a b c d e f", "a b c d e f", "", "b d f a"])
        let function = RunningSum(perRecord: false, dropAbove: 100)
        let whole = try Self.run(.updateStateByKey, function, batches, partitions: 3)

        let first = StateFunctionStage(.updateStateByKey, function: function, partitions: 3)
        _ = try CollectingStagePropertyTests.run([Array(batches[0..<2])]) { graph, inputs in
            graph.add("state", .collecting(first, inputs: inputs))
        }
        let second = StateFunctionStage(.updateStateByKey, function: function, partitions: 2)
        try second.restore(first.snapshot())
        #expect(second.stateKeys == 6)
        let rest = try CollectingStagePropertyTests.run([batches], range: 2..<4) { graph, inputs in
            graph.add("state", .collecting(second, inputs: inputs))
        }
        #expect(rest == Array(whole[2..<4]))

        let other = StateFunctionStage(.mapWithState(timeout: 3), function: function, partitions: 2)
        #expect(throws: SnapshotError.self) { try other.restore(first.snapshot()) }
    }
}
