import SluiceSDK
import SluiceTesting
import Testing

struct BatchTests {
    @Test func bytesRoundTrip() {
        var builder = BatchBuilder()
        for text in ["", "one", "ünïcode", String(repeating: "x", count: 10_000)] { builder.append(text) }
        let batch = OwnedBatch(builder)
        #expect(batch.count == 4)
        #expect(batch.records == ["", "one", "ünïcode", String(repeating: "x", count: 10_000)].map { Record($0) })
        #expect(batch.raw.value_data_len == UInt64(0 + 3 + "ünïcode".utf8.count + 10_000))
        #expect(batch.raw.release != nil)
        #expect(batch.raw.key_offsets == nil && batch.raw.timestamps == nil)
    }

    @Test func integerValuesWithKeys() {
        let records = [Record(int: 7, key: "a"), Record(int: -1, key: ""), Record(int: Int64.max, key: "c")]
        let batch = OwnedBatch.of(records)
        #expect(batch.view.valueType == .int64)
        #expect(batch.raw.value_offsets == nil)
        #expect(batch.records == records)
        #expect(batch.view.displayString(at: 0) == "(a,7)")
    }

    @Test func absentKeysUseTheValidityBitmap() {
        var builder = BatchBuilder(keyed: true)
        builder.append(key: "k0", value: "v0")
        builder.append("no key")
        for i in 2..<20 { builder.append(key: "k\(i)", value: "v\(i)") }
        let batch = OwnedBatch(builder)
        #expect(batch.raw.key_validity != nil)
        #expect(batch.view.key(at: 1) == nil)
        #expect(batch.view.keyString(at: 0) == "k0")
        #expect(batch.view.keyString(at: 19) == "k19")
        #expect(batch.view.displayString(at: 1) == "no key")
    }

    @Test func allKeysPresentNeedsNoBitmap() {
        let batch = OwnedBatch.of([Record("v", key: "k"), Record("w", key: "l")])
        #expect(batch.raw.key_validity == nil)
    }

    @Test func timestamps() {
        let records = [Record("a", timestamp: 5), Record("b", timestamp: 6)]
        #expect(OwnedBatch.of(records).records == records)
    }

    @Test func emptyBatchHasOneOffset() {
        let batch = OwnedBatch(BatchBuilder())
        #expect(batch.count == 0)
        #expect(batch.raw.value_offsets?[0] == 0)
        #expect(PluginConformance.problems(in: batch) == nil)
    }

    @Test func passthroughSharesTheInputBuffers() {
        let input = OwnedBatch.of([Record("same")])
        var builder = BatchBuilder()
        builder.passthrough(input.view)
        var raw = sluice_batch()
        builder.finish(into: &raw)
        let output = OwnedBatch(taking: raw, dependencies: [input])
        #expect(output.raw.value_data == input.raw.value_data)
        #expect(output.records == [Record("same")])
    }

    @Test func malformedBatchesAreDetected() {
        let offsets: [UInt32] = [0, 5, 3]
        let data = [UInt8]("abcde".utf8)
        let problem = offsets.withUnsafeBufferPointer { pointer -> String? in
            data.withUnsafeBufferPointer { bytes in
                var raw = sluice_batch()
                raw.struct_size = UInt32(MemoryLayout<sluice_batch>.size)
                raw.count = 2
                raw.value_offsets = pointer.baseAddress
                raw.value_data = bytes.baseAddress
                raw.value_data_len = 5
                return PluginConformance.problems(in: OwnedBatch(taking: raw))
            }
        }
        #expect(problem == "a batch whose value_offsets[2] = 3 is less than value_offsets[1] = 5")
    }
}
