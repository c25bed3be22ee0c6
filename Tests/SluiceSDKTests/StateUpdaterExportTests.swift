import CSluice
import Dispatch
import SluiceLoader
import SluiceSDK
import SluiceTesting
import Synchronization
import Testing

/// A Swift state updater: per key, its last two text values, as "a|b"; removed when a batch has no values for it.
final class LastTwo: StateUpdaterPlugin {
    static let info = PluginInfo(name: "test-last-two", version: "1.0.0", description: "The last two values per key", concurrent: true)
    init(configuration: EmptyConfiguration, context: PluginContext) throws {}

    func update(key: UnsafeRawBufferPointer, values: BatchView, state: UnsafeRawBufferPointer?) throws -> StateUpdate {
        if values.count == 0 { return state == nil ? .keep : .remove }
        guard values.valueType == .bytes else { throw PluginError("test-last-two takes text values") }
        var kept = state.map { String(decoding: $0, as: UTF8.self).split(separator: "|", omittingEmptySubsequences: false).map(String.init) } ?? []
        for i in 0..<values.count { kept.append(values.valueString(at: i)) }
        if kept == ["same"] { return .keep }
        return .set(Array(kept.suffix(2).joined(separator: "|").utf8))
    }
}

struct StateUpdaterExportTests {
    @Test func aSwiftStateUpdaterAnswersThroughTheCThunk() throws {
        let descriptor = try #require(PluginExport.descriptor(for: LastTwo.self, hostABI: SLUICE_ABI_VERSION))
        #expect(descriptor.pointee.struct_size == SLUICE_PLUGIN_V1_SIZE_1_3)
        let plugin = try PluginLoader.check(descriptor, path: "in-process:test-last-two")
        #expect(plugin.kind == .stateUpdater)
        #expect(plugin.isConcurrent)
        let instance = try PluginInstance(plugin: plugin, name: "last", configJSON: "{}", log: { _, _, _ in })
        func update(_ values: [Record], _ state: String?) throws -> PluginStateChange {
            try Array("k".utf8).withUnsafeBytes { try instance.updateState(key: $0, values: .of(values), state: state.map { Array($0.utf8) }) }
        }
        #expect(try update([Record("x"), Record("y"), Record("z")], nil) == .set(Array("y|z".utf8)))
        #expect(try update([Record("w")], "y|z") == .set(Array("z|w".utf8)))
        #expect(try update([Record("same")], nil) == .keep)
        #expect(try update([], "z|w") == .remove)
        #expect(try update([], nil) == .keep)
        let error = #expect(throws: PluginCallError.self) { try update([Record(int: 1)], nil) }
        #expect(error?.message == "test-last-two takes text values")
    }

    @Test func theTestKitRunsAStateUpdater() throws {
        let harness = try PluginHarness(LastTwo.self)
        let first = try harness.update(key: "k", values: [Record("a", key: "k"), Record("b", key: "k")], state: nil)
        #expect(first == .set(Array("a|b".utf8)))
        #expect(try harness.update(key: "k", values: [], state: Array("a|b".utf8)) == .remove)
    }

    /// A concurrent plugin's answers are kept per calling thread (docs/abi.md §9b): threads updating at once each read
    /// their own answer, never another thread's.
    @Test func concurrentCallsEachGetTheirOwnAnswer() throws {
        let harness = try PluginHarness(LastTwo.self)
        let wrong = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for n in 0..<500 {
                let (a, b) = ("t\(thread)-\(n)", "x\(n)")
                let answer = try? harness.update(key: "k\(thread)", values: [Record(a), Record(b)], state: nil)
                if answer != .set(Array("\(a)|\(b)".utf8)) { wrong.withLock { $0 += 1 } }
            }
        }
        #expect(wrong.withLock { $0 } == 0)
    }

    @Test func aStateUpdaterRefusesAHostOlderThan13() {
        #expect(PluginExport.descriptor(for: LastTwo.self, hostABI: 0x0001_0002) == nil)
        #expect(PluginExport.descriptor(for: LastTwo.self, hostABI: 0x0002_0003) == nil)
        #expect(PluginExport.descriptor(for: LastTwo.self, hostABI: 0x0001_0003) != nil)
    }
}
