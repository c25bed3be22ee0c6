import Foundation
import SluiceLoader
import SluiceSDK
import SluiceTesting
import Synchronization
import Testing

struct PluginExportTests {
    @Test func descriptorDescribesThePlugin() throws {
        let descriptor = try #require(PluginExport.descriptor(for: Reverse.self, hostABI: SLUICE_ABI_VERSION))
        let d = descriptor.pointee
        #expect(String(cString: d.name) == "test-reverse")
        #expect(String(cString: d.version) == "2.1.0")
        #expect(d.kind == SLUICE_KIND_TRANSFORM)
        #expect(d.flags & SLUICE_FLAG_CONCURRENT != 0)
        #expect(d.abi_version == SLUICE_ABI_VERSION)
        #expect(Int(d.struct_size) == MemoryLayout<sluice_plugin_v1>.size)
        #expect(String(cString: d.build_info).hasPrefix("toolchain=swift-6."))
        #expect(String(cString: d.build_info).hasSuffix(";sdk=\(sluiceSDKVersion)"))
        let schema = try PluginSchema(json: String(cString: d.config_schema))
        #expect(schema.closed)
        #expect(schema.option("mode")?.allowed == ["chars", "none"])
        #expect(schema.option("repeat_count")?.defaultJSON == "1")
        #expect(schema.option("tag")?.defaultJSON == nil)
        #expect(PluginExport.descriptor(for: Reverse.self, hostABI: SLUICE_ABI_VERSION) == descriptor, "made once")
    }

    @Test func anotherHostMajorIsRefused() {
        #expect(PluginExport.descriptor(for: Reverse.self, hostABI: 0x0002_0000) == nil)
        #expect(PluginExport.descriptor(for: Reverse.self, hostABI: 0x0001_0007) != nil, "a newer minor is fine")
    }

    @Test func transformRunsThroughTheCThunks() throws {
        let harness = try PluginHarness(Reverse.self, config: #"{"repeat_count": 2}"#)
        #expect(try harness.transform([Record("abc"), Record("")]) == [Record("cba"), Record("cba"), Record(""), Record("")])
        #expect(harness.logs.map(\.message) == ["made with 2 copies"])
        #expect(harness.logs.first?.level == .info)
    }

    @Test func defaultsAreFilledIn() throws {
        let harness = try PluginHarness(Reverse.self)
        #expect(try harness.transform([Record("ab")]) == [Record("ba")])
    }

    @Test(arguments: [
        (#"{"repeat_cont": 2}"#, "unknown configuration key 'repeat_cont' (did you mean 'repeat_count'?)"),
        (#"{"repeat_count": "two"}"#, "configuration key 'repeat_count': expected an integer"),
        (#"{"mode": "words"}"#, "configuration key 'mode': 'words' is not one of 'chars', 'none'"),
        (#"{"repeat_count": -1}"#, "configuration key 'repeat_count': negative"),
        (#"[1]"#, "configuration must be a JSON object"),
        (#"{"#, "configuration is not valid JSON"),
    ])
    func badConfigurationIsRefusedNamingTheKey(config: String, message: String) {
        do {
            _ = try PluginHarness(Reverse.self, config: config)
            Issue.record("accepted \(config)")
        } catch let error as PluginCallError {
            #expect(error.status == SLUICE_ERR_CONFIG)
            #expect(error.message == message)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func requiredOptionsAreNamed() {
        final class NeedsPort: SinkPlugin {
            struct Configuration: Decodable { var port: Int }
            static let info = PluginInfo(
                name: "needs-port",
                version: "1",
                description: "x",
                options: [.integer("port", description: "p", required: true)]
            )
            init(configuration: Configuration, context: PluginContext) throws {}
            func begin(_ batch: BatchInfo) throws {}
            func write(_ chunk: BatchView) throws {}
            func commit(_ batch: BatchInfo) throws {}
        }
        #expect(throws: PluginCallError.self) { try PluginHarness(NeedsPort.self) }
        do {
            _ = try PluginHarness(NeedsPort.self)
        } catch {
            #expect("\(error)" == "missing required configuration key 'port'")
        }
    }

    @Test func sourceReadsExactRangesAndRejectsShortReads() throws {
        let source = try PluginHarness(FixedSource.self)
        #expect(try source.partitionCount() == 2)
        #expect(try source.available(partition: 1) == 0..<2)
        #expect(try source.read(partition: 0, offsets: 1..<3) == [Record("b"), Record("c")])
        let short = try PluginHarness(FixedSource.self, config: #"{"short": true}"#)
        let error = #expect(throws: PluginCallError.self) { try short.read(partition: 0, offsets: 0..<3) }
        #expect(error?.message == "read of partition 0 [0, 3) produced 2 records, not 3")
    }

    @Test(arguments: [("retry", SLUICE_RETRY, "disk busy"), ("fatal", SLUICE_FATAL, "disk gone")])
    func sinkErrorsMapToStatuses(mode: String, status: Int32, message: String) throws {
        let sink = try PluginHarness(ScriptedSink.self, config: #"{"fail": "\#(mode)"}"#)
        let error = #expect(throws: PluginCallError.self) { try sink.write(batch: 0, chunks: [[Record("a")]]) }
        #expect(error?.status == status)
        #expect(error?.message == message)
        #expect(error?.isRetryable == (mode == "retry"))
    }

    @Test func destroyingAnInstanceJoinsItsThread() throws {
        var harness: PluginHarness? = try PluginHarness(TickingSource.self)
        let made = TickingSource.lastTicker.withLock { $0 }
        let ticker = try #require(made)
        // Wait until the thread has logged through the host at least once.
        let deadline = ContinuousClock.now + .seconds(10)
        while ticker.ticks.load(ordering: .relaxed) == 0 && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.001) }
        #expect(ticker.ticks.load(ordering: .relaxed) > 0)
        #expect(harness?.logs.contains { $0.message == "tick" } == true)
        let returnedBefore = ticker.returned.load(ordering: .sequentiallyConsistent)
        #expect(!returnedBefore)
        harness = nil  // destroy: must not return before the thread has
        let returnedAfter = ticker.returned.load(ordering: .sequentiallyConsistent)
        #expect(returnedAfter, "the plugin's thread was still running after destroy returned")
    }

    @Test func reducerPluginsCombineThroughTheCThunks() throws {
        let sumDescriptor = try #require(PluginExport.descriptor(for: SumReducer.self, hostABI: SLUICE_ABI_VERSION))
        let sum = try PluginLoader.check(sumDescriptor, path: "in-process:test-sum")
        #expect(sum.kind == .reducer)
        #expect(sum.functions.reduce_value_type == SLUICE_REDUCE_INT64)
        let sums = try PluginInstance(plugin: sum, name: "sum", configJSON: "{}", log: { _, _, _ in })
        #expect(sums.hasReduceInvert)
        let a: [Int64] = [1, 2, 3]
        let b: [Int64] = [10, 20, -30]
        var out = [Int64](repeating: 0, count: 3)
        try sums.reduceCombine(a, b, &out, 3)
        #expect(out == [11, 22, -27])
        var back = [Int64](repeating: 0, count: 3)
        try sums.reduceInvert(out, b, &back, 3)
        #expect(back == a)

        let maxDescriptor = try #require(PluginExport.descriptor(for: MaxReducer.self, hostABI: SLUICE_ABI_VERSION))
        let maximum = try PluginLoader.check(maxDescriptor, path: "in-process:test-max")
        #expect(maximum.functions.reduce_value_type == SLUICE_REDUCE_DOUBLE)
        #expect(maximum.functions.reduce_invert == nil)
        let maxes = try PluginInstance(plugin: maximum, name: "max", configJSON: "{}", log: { _, _, _ in })
        var highest = [Double](repeating: 0, count: 2)
        try maxes.reduceCombine([1.5, -2], [0.5, 7], &highest, 2)
        #expect(highest == [1.5, 7])
        let error = #expect(throws: PluginCallError.self) { try maxes.reduceCombine([Double.nan], [1], &highest, 1) }
        #expect(error?.message == "NaN at 0")
    }
}
