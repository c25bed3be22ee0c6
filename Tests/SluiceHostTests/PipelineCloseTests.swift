import Foundation
import SluiceHost
import SluiceLoader
import Synchronization
import Testing

/// `PipelineInstance.close()` destroys the plugin instances in the documented order — the order they were made:
/// sources, then stages, then sinks — and each exactly once.
struct PipelineCloseTests {
    @Test func closeDestroysSourcesThenStagesThenSinks() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try PluginLoaderTests.compile("lifecycle_probe.c", into: directory, as: "libsource", flags: ["-DAS_SOURCE"])
        _ = try PluginLoaderTests.compile("lifecycle_probe.c", into: directory, as: "libtransform")
        _ = try PluginLoaderTests.compile("lifecycle_probe.c", into: directory, as: "libsink", flags: ["-DAS_SINK"])
        let catalog = PluginCatalog.scan(directories: [directory.path])
        try #require(catalog.refusals.isEmpty, "\(catalog.refusals)")
        // Written sinks first and sources last, so that file order cannot pass for the right order.
        let yaml = """
            name: lifecycle
            batch_interval: 1s
            sinks:
              out-b: {from: second, plugin: c-lifecycle-sink}
              out-a: {from: first, plugin: c-lifecycle-sink}
            stages:
              second: {from: first, plugin: c-lifecycle-transform}
              first: {from: in, plugin: c-lifecycle-transform}
            sources:
              in: {plugin: c-lifecycle-source}
            """
        let resolved = try PipelineBuilder.resolve(try PipelineParser.parse(text: yaml, file: "/lifecycle.yaml"), catalog: catalog)
        let said = Mutex<[String]>([])
        let pipeline = try PipelineInstance(resolved, parallelism: 1) { _, _, message in
            said.withLock { $0.append(message) }
        }
        #expect(said.withLock { $0 }.isEmpty, "nothing is destroyed before close")
        pipeline.close()
        #expect(
            said.withLock { $0 } == ["destroyed in", "destroyed first", "destroyed second", "destroyed out-b", "destroyed out-a"],
            "sources, then stages in dependency order, then sinks"
        )
    }
}
