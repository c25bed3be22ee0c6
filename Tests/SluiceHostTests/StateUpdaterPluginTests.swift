import CSluice
import Foundation
import SluiceCore
import SluiceLoader
import SluiceSDK
import SluiceTesting
import Testing

@testable import SluiceHost

/// State-updater plugins (ABI 1.3): a C plugin written from docs/abi.md §9b loads, conforms and runs as
/// updateStateByKey's function; malformed answers and short descriptors are refused; a 1.2 reducer still loads; the
/// builder names the operations such a plugin cannot serve.
@Suite(.serialized)
struct StateUpdaterPluginTests {
    static func compile(_ name: String, flags: [String] = []) throws -> (path: String, directory: URL) {
        let directory = try TestPaths.temporaryDirectory()
        return (try PluginLoaderTests.compile("c_recent_state.c", into: directory, as: name, flags: flags), directory)
    }

    @Test func aCStateUpdaterLoadsAndConforms() throws {
        let (path, directory) = try Self.compile("librecent")
        defer { try? FileManager.default.removeItem(at: directory) }
        let plugin = try PluginLoader.load(path: path)
        #expect(plugin.kind == .stateUpdater)
        #expect(plugin.kind.rawValue == "state-updater")
        #expect(plugin.abiDescription == "1.3")
        let report = PluginConformance.check(path: path)
        #expect(report.passed, "\(report)")
        let details = Dictionary(report.checks.map { ($0.name, $0.detail) }, uniquingKeysWith: { a, _ in a })
        #expect(details["updates a new key"] == "set 3 bytes", "\(report)")  // "0;6"
        #expect(details["updates an existing state"] == "set 5 bytes", "\(report)")  // "0;6,9"
        #expect(details["updates a key without values"] == "set 5 bytes", "\(report)")  // "1;6,9"
    }

    @Test func theCallsFollowTheContract() throws {
        let (path, directory) = try Self.compile("librecent")
        defer { try? FileManager.default.removeItem(at: directory) }
        let instance = try PluginInstance(plugin: try PluginLoader.load(path: path), name: "s", configJSON: "{}", log: { _, _, _ in })
        func update(_ values: [Record], _ state: String?) throws -> PluginStateChange {
            try Array("k".utf8).withUnsafeBytes { try instance.updateState(key: $0, values: .of(values), state: state.map { Array($0.utf8) }) }
        }
        func text(_ change: PluginStateChange) -> String? {
            if case .set(let bytes) = change { String(decoding: bytes, as: UTF8.self) } else { nil }
        }
        #expect(text(try update([Record(int: 2, key: nil), Record(int: 5)], nil)) == "0;7")
        #expect(text(try update([Record("a"), Record("b")], "0;7")) == "0;7,2", "text values count 1 each")
        #expect(text(try update([Record(int: 1)], "0;1,2,3")) == "0;2,3,1", "only the last three batches are kept")
        #expect(try update([], nil) == .keep, "a key without state or values stays without")
        #expect(text(try update([], "0;4")) == "1;4")
        #expect(try update([], "1;4") == .remove)
        // An empty state is a state (SLUICE_STATE_PRESENT with 0 bytes), not none: this plugin cannot parse it.
        #expect(throws: PluginCallError.self) { try update([], "") }
        let refused = #expect(throws: PluginCallError.self) { try update([Record(int: 1)], "not a state") }
        #expect(refused?.message == "key 'k' has a state that is not IDLE;SUMS")
    }

    @Test(arguments: [
        ("-DSLUICE_TEST_BAD_ACTION", "update_state returned action 7; expected SLUICE_STATE_KEEP (0)"),
        ("-DSLUICE_TEST_BAD_LENGTH", "update_state returned a state of 1099511627776 bytes; the most a key may keep is 16777216"),
    ])
    func malformedAnswersFailTheCheckAndTheCall(_ flag: String, _ message: String) throws {
        let (path, directory) = try Self.compile("libbad", flags: [flag])
        defer { try? FileManager.default.removeItem(at: directory) }
        let report = PluginConformance.check(path: path)
        #expect(!report.passed)
        let failure = try #require(report.failures.first)
        #expect(failure.name == "updates a new key")
        #expect(failure.detail.contains(message), "\(report)")
        #expect(failure.detail.contains("plugin 'c-recent' (\(path))"), "the error names the plugin and its file")
        let instance = try PluginInstance(plugin: try PluginLoader.load(path: path), name: "s", configJSON: "{}", log: { _, _, _ in })
        #expect(throws: MalformedStateResult.self) {
            _ = try Array("k".utf8).withUnsafeBytes { try instance.updateState(key: $0, values: .of([Record(int: 1)]), state: nil) }
        }
    }

    @Test func aStateUpdaterWithAShortDescriptorIsRefused() throws {
        let (path, directory) = try Self.compile("libshort", flags: ["-DSLUICE_TEST_OLD_DESCRIPTOR"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: path) }
        #expect(error?.code == .descriptorTooSmall)
        #expect(error?.description.contains("state updaters need ABI 1.3's \(SLUICE_PLUGIN_V1_SIZE_1_3)") == true, "\(error?.description ?? "")")
    }

    @Test func aReducerBuiltForABI12StillLoadsAndConforms() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try PluginLoaderTests.compile("c_sum_reducer.c", into: directory, as: "libsum12", flags: ["-DSLUICE_TEST_AS_1_2"])
        let plugin = try PluginLoader.load(path: path)
        #expect(plugin.abiDescription == "1.2")
        #expect(plugin.kind == .reducer)
        #expect(plugin.functions.update_state == nil, "the 1.3 field past a 1.2 descriptor reads as zero")
        let report = PluginConformance.check(path: path)
        #expect(report.passed, "\(report)")
    }

    @Test func sizesOfTheDescriptorVersions() {
        #expect(PluginLoader.reducerDescriptorSize == Int(SLUICE_PLUGIN_V1_SIZE_1_1) && SLUICE_PLUGIN_V1_SIZE_1_1 == 176)
        #expect(PluginLoader.stateUpdaterDescriptorSize == Int(SLUICE_PLUGIN_V1_SIZE_1_3) && SLUICE_PLUGIN_V1_SIZE_1_3 == 184)
        #expect(MemoryLayout<sluice_plugin_v1>.size == 184)
    }

    /// The plugin as updateStateByKey's function in the engine's stage: every key with state is emitted every batch,
    /// idle keys are called without values and dropped on their second idle batch, and the state survives a
    /// snapshot into a new stage.
    @Test func itRunsAsUpdateStateByKeysFunction() throws {
        let (path, directory) = try Self.compile("librecent")
        defer { try? FileManager.default.removeItem(at: directory) }
        let plugin = try PluginLoader.load(path: path)
        func stage() throws -> StateFunctionStage {
            let instance = try PluginInstance(plugin: plugin, name: "recent", configJSON: "{}", log: { _, _, _ in })
            return StateFunctionStage(.updateStateByKey, function: PluginStateFunction(instance), partitions: 2)
        }
        func run(_ stage: StateFunctionStage, _ words: [String], _ id: UInt64) throws -> [String: String] {
            let chunk = CollectedChunk(input: 0, batch: .of(words.map { Record(int: 1, key: $0) }))
            var out: [String: String] = [:]
            for p in 0..<2 {
                for batch in try stage.run(partition: p, chunks: [chunk], id: id) {
                    for record in Record.records(of: batch.view) {
                        guard case .text(let text) = record.value else { Issue.record("state is bytes"); continue }
                        out[record.key!] = text
                    }
                }
            }
            return out
        }
        let first = try stage()
        #expect(try run(first, ["a", "b", "a"], 0) == ["a": "0;2", "b": "0;1"])
        #expect(try run(first, ["a"], 1) == ["a": "0;2,1", "b": "1;1"])
        let saved = first.snapshot()
        let second = try stage()
        try second.restore(saved)
        #expect(second.fingerprint == "updateStateByKey(stateFunction=plugin:c-recent)")
        #expect(try run(second, [], 2) == ["a": "1;2,1"], "b is removed on its second idle batch")
        #expect(try run(second, [], 3) == [:])
        #expect(second.stateKeys == 0)
    }

    static func problems(_ stage: String, catalog: PluginCatalog) throws -> [String] {
        let yaml = """
            name: p
            batch_interval: 1s
            sources:
              lines: {plugin: file-watch, config: {directory: /tmp}}
            stages:
              pairs: {from: lines, plugin: split, config: {output: pairs}}
              \(stage)
            sinks:
              out: {from: s, plugin: files, config: {prefix: out/x}}
            """
        let spec = try PipelineParser.parse(text: yaml, file: "/pipelines/p.yaml")
        do {
            let resolved = try PipelineBuilder.resolve(spec, catalog: catalog)
            #expect(resolved.stateUpdaterPlugins["s"]?.plugin.name == "c-recent" || resolved.stateUpdaterPlugins.isEmpty)
            return []
        } catch {
            return error.errors.map(\.message)
        }
    }

    @Test func theBuilderResolvesItForUpdateStateByKeyOnly() throws {
        let (_, directory) = try Self.compile("librecent")
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = PluginCatalog.scan(directories: [directory.path, TestPaths.binDirectory])
        #expect(try Self.problems("s: {from: pairs, op: updateStateByKey, function: c-recent}", catalog: catalog) == [])
        let onReduce = try Self.problems("s: {from: pairs, op: reduceByKey, function: c-recent}", catalog: catalog)
        #expect(onReduce.first?.contains("plugin 'c-recent' is a state-updater plugin: it supplies updateStateByKey only, not reduceByKey") == true, "\(onReduce)")
        let onWindow = try Self.problems("s: {from: pairs, op: reduceByKeyAndWindow, function: c-recent, window: 2s, inverse: true}", catalog: catalog)
        #expect(onWindow.first?.contains("supplies updateStateByKey only, not reduceByKeyAndWindow") == true, "\(onWindow)")
        let onMapWithState = try Self.problems("s: {from: pairs, op: mapWithState, function: c-recent}", catalog: catalog)
        #expect(onMapWithState.first?.contains("not mapWithState") == true, "\(onMapWithState)")
        let dropZero = try Self.problems("s: {from: pairs, op: updateStateByKey, function: c-recent, drop_zero: true}", catalog: catalog)
        #expect(dropZero.first?.contains("drop_zero does not apply with state-updater plugin 'c-recent'") == true, "\(dropZero)")
        let misspelt = try Self.problems("s: {from: pairs, op: updateStateByKey, function: c-recnt}", catalog: catalog)
        #expect(misspelt.first?.contains("did you mean 'c-recent'") == true, "\(misspelt)")
    }
}
