import PropertyBased
import SluiceCore
import SluiceSDK
import Testing

/// Checkpoint deltas: a stage that saves only the keys changed since its previous checkpoint snapshot must, restored
/// from the whole snapshot and every delta after it, hold byte for byte the state it would have saved whole.
struct IncrementalSnapshotTests {
    typealias Rec = KeyedOperatorPropertyTests.Rec

    /// Runs `step(n)` for every batch, takes a checkpoint snapshot after each (whole after the first, deltas after
    /// that), and keeps a replica built from them alone; after every batch the replica's whole snapshot must equal
    /// the stage's. Returns the snapshots taken.
    static func replicate(
        _ stage: some StatefulStage, _ replica: some StatefulStage, batches: Int, step: (Int) throws -> Void
    ) throws -> [CheckpointSnapshot] {
        var taken: [CheckpointSnapshot] = []
        for n in 0..<batches {
            try step(n)
            let snapshot = stage.checkpointSnapshot(delta: n > 0)
            taken.append(snapshot)
            if snapshot.isDelta { try replica.applyDelta(snapshot.bytes) } else { try replica.restore(snapshot.bytes) }
            #expect(replica.snapshot() == stage.snapshot(), "after batch \(n) (\(snapshot.isDelta ? "delta" : "whole"))")
            #expect(replica.stateKeys == stage.stateKeys)
        }
        return taken
    }

    @Test(arguments: [KeyedOperator.Kind.updateStateByKey, .mapWithState])
    func keyedStateRebuiltFromDeltasEqualsTheWholeState(kind: KeyedOperator.Kind) async {
        await propertyCheck(
            count: 60,
            input: KeyedOperatorPropertyTests.streams,
            Gen.int(in: 0...3),
            Gen.int(in: 1...3),
            Gen.element(of: [ReduceFunction.sum, .max, .last, .mean]).map { $0 ?? .sum }
        ) { batches, timeout, partitions, function in
            let op = KeyedOperator(kind, function: function, timeout: kind == .mapWithState ? timeout : 0)
            let stage = KeyedStage(op, partitions: partitions)
            let replica = KeyedStage(op, partitions: partitions)
            let taken = try Self.replicate(stage, replica, batches: batches.count) { n in
                _ = try KeyedOperatorPropertyTests.run(stage, batches, n..<(n + 1))
            }
            #expect(taken.dropFirst().allSatisfy { $0.isDelta }, "every snapshot after the first is a delta")
        }
    }

    /// mapWithState's timeouts remove keys: a delta carries them as tombstones, and a key that times out and comes
    /// back between two snapshots is set again after its tombstone.
    @Test func timedOutKeysLeaveTheReplicaAndComeBack() throws {
        let lines = ["a b c", "a", "a", "b", "b c", "", "", "a"]
        let batches = lines.map { $0.split(separator: " ").map { StateFunctionStageTests.rec(String($0)) } }
        let op = KeyedOperator(.mapWithState, function: .sum, timeout: 1)
        let stage = KeyedStage(op, partitions: 2)
        let replica = KeyedStage(op, partitions: 2)
        _ = try Self.replicate(stage, replica, batches: batches.count) { n in
            _ = try KeyedOperatorPropertyTests.run(stage, batches, n..<(n + 1))
        }
        #expect(replica.stateKeys == 1)
    }

    /// The point of it: a batch touching 1 % of the keys saves about 1 % of the bytes.
    @Test func aDeltaIsProportionalToTheKeysTouched() throws {
        // 1,000 keys: what the test source serves in one batch.
        let keys = (0..<1000).map { StateFunctionStageTests.rec("key-\($0)") }
        let touched = (0..<10).map { StateFunctionStageTests.rec("key-\($0 * 97)") }
        let stage = KeyedStage(KeyedOperator(.updateStateByKey, function: .sum), partitions: 2)
        _ = try KeyedOperatorPropertyTests.run(stage, [keys, touched], 0..<1)
        let whole = stage.checkpointSnapshot(delta: true)
        #expect(!whole.isDelta, "the first checkpoint snapshot is whole: there is nothing to apply a delta on")
        _ = try KeyedOperatorPropertyTests.run(stage, [keys, touched], 1..<2)
        let delta = stage.checkpointSnapshot(delta: true)
        #expect(delta.isDelta)
        #expect(delta.bytes.count * 100 < whole.bytes.count * 2, "delta \(delta.bytes.count) bytes, whole \(whole.bytes.count)")
        // Asked for a whole one, it saves everything, and deltas go on from there.
        let again = stage.checkpointSnapshot(delta: false)
        #expect(!again.isDelta && again.bytes == stage.snapshot())
    }

    /// A restored stage tells its changes from the restored state (so a restarted pipeline goes on with the chain
    /// it restored), for either kind of stage; a window, whose ring turns over every batch, always saves whole.
    @Test func aRestoredStageGoesOnWithDeltasAndAWindowSavesWhole() throws {
        let batches = [["a", "b", "c"], ["b", "d"], ["a"]].map { $0.map { StateFunctionStageTests.rec($0) } }
        let op = KeyedOperator(.updateStateByKey, function: .sum)
        let first = KeyedStage(op, partitions: 2)
        _ = try KeyedOperatorPropertyTests.run(first, batches, 0..<1)
        let saved = first.checkpointSnapshot(delta: false).bytes
        let restored = KeyedStage(op, partitions: 2)
        let replica = KeyedStage(op, partitions: 2)
        try restored.restore(saved)
        try replica.restore(saved)
        _ = try KeyedOperatorPropertyTests.run(restored, batches, 1..<3)
        let delta = restored.checkpointSnapshot(delta: true)
        #expect(delta.isDelta)
        try replica.applyDelta(delta.bytes)
        #expect(replica.snapshot() == restored.snapshot() && replica.stateKeys == 4)

        let function = StateFunctionStageTests.RunningSum(perRecord: false, dropAbove: 1)
        let stateFunction = StateFunctionStage(.updateStateByKey, function: function, partitions: 2)
        let functionReplica = StateFunctionStage(.updateStateByKey, function: function, partitions: 2)
        for stage in [stateFunction, functionReplica] {
            _ = try CollectingStagePropertyTests.run([batches], range: 0..<1) { graph, inputs in graph.add("state", .collecting(stage, inputs: inputs)) }
        }
        try stateFunction.restore(stateFunction.snapshot())
        _ = try CollectingStagePropertyTests.run([batches], range: 1..<2) { graph, inputs in graph.add("state", .collecting(stateFunction, inputs: inputs)) }
        let functionDelta = stateFunction.checkpointSnapshot(delta: true)
        #expect(functionDelta.isDelta)
        try functionReplica.applyDelta(functionDelta.bytes)
        #expect(functionReplica.snapshot() == stateFunction.snapshot())

        let window = KeyedStage(KeyedOperator(.reduceByKeyAndWindow, function: .sum, window: 3), partitions: 1)
        _ = window.checkpointSnapshot(delta: false)
        #expect(!window.checkpointSnapshot(delta: true).isDelta)
        #expect(throws: SnapshotError.self) { try window.applyDelta(delta.bytes) }
        let records = WindowStage(window: 2, slide: 1)
        #expect(!records.checkpointSnapshot(delta: true).isDelta)
    }

    @Test func aDeltaOfAnotherStageOrDamagedIsRefused() throws {
        let sum = KeyedStage(KeyedOperator(.updateStateByKey, function: .sum), partitions: 1)
        let max = KeyedStage(KeyedOperator(.updateStateByKey, function: .max), partitions: 1)
        let batches = [[StateFunctionStageTests.rec("a")], [StateFunctionStageTests.rec("b")]]
        _ = try KeyedOperatorPropertyTests.run(sum, batches, 0..<1)
        _ = sum.checkpointSnapshot(delta: false)
        _ = try KeyedOperatorPropertyTests.run(sum, batches, 1..<2)
        let delta = sum.checkpointSnapshot(delta: true).bytes
        let error = #expect(throws: SnapshotError.self) { try max.applyDelta(delta) }
        #expect(error?.description.contains("updateStateByKey") == true)
        #expect(throws: SnapshotError.self) { try sum.applyDelta(Array(delta.dropLast(2))) }
        #expect(throws: SnapshotError.self) { try sum.applyDelta(sum.snapshot()) }
    }

    // MARK: StateFunctionStage

    static func stateFunctionArguments() -> [StateFunctionStage.Mode] { [.updateStateByKey, .mapWithState(timeout: 0), .mapWithState(timeout: 2)] }

    @Test(arguments: stateFunctionArguments())
    func stateFunctionRebuiltFromDeltasEqualsTheWholeState(mode: StateFunctionStage.Mode) async {
        await propertyCheck(count: 60, input: KeyedOperatorPropertyTests.streams, Gen.int(in: 1...3)) { batches, partitions in
            // Removes keys (a sum above 8, or at 0 or below) and ages idle ones, so every kind of change happens.
            let function = StateFunctionStageTests.RunningSum(perRecord: mode != .updateStateByKey, dropAbove: 8)
            let stage = StateFunctionStage(mode, function: function, partitions: partitions)
            let replica = StateFunctionStage(mode, function: function, partitions: partitions)
            let whole = try CollectingStagePropertyTests.run([batches]) { graph, inputs in
                graph.add("state", .collecting(StateFunctionStage(mode, function: function, partitions: partitions), inputs: inputs))
            }
            var got: [[String]] = []
            _ = try Self.replicate(stage, replica, batches: batches.count) { n in
                got += try CollectingStagePropertyTests.run([batches], range: n..<(n + 1)) { graph, inputs in
                    graph.add("state", .collecting(stage, inputs: inputs))
                }
            }
            #expect(got == whole, "taking checkpoint snapshots changes nothing the stage emits")
        }
    }

    @Test func aStateFunctionDeltaHoldsOnlyTheKeysTouched() throws {
        let function = StateFunctionStageTests.RunningSum(perRecord: true)
        let stage = StateFunctionStage(.mapWithState(timeout: 0), function: function, partitions: 2)
        let keys = (0..<1000).map { StateFunctionStageTests.rec("key-\($0)") }
        let touched = (0..<10).map { StateFunctionStageTests.rec("key-\($0 * 7)") }
        _ = try CollectingStagePropertyTests.run([[keys, touched]], range: 0..<1) { graph, inputs in
            graph.add("state", .collecting(stage, inputs: inputs))
        }
        let whole = stage.checkpointSnapshot(delta: true)
        _ = try CollectingStagePropertyTests.run([[keys, touched]], range: 1..<2) { graph, inputs in
            graph.add("state", .collecting(stage, inputs: inputs))
        }
        let delta = stage.checkpointSnapshot(delta: true)
        #expect(!whole.isDelta && delta.isDelta)
        #expect(delta.bytes.count * 100 < whole.bytes.count * 2, "delta \(delta.bytes.count) bytes, whole \(whole.bytes.count)")
        let other = StateFunctionStage(.mapWithState(timeout: 1), function: function, partitions: 2)
        #expect(throws: SnapshotError.self) { try other.applyDelta(delta.bytes) }
    }
}
