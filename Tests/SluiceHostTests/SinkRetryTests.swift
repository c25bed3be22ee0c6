import Foundation
import SluiceCore
import SluiceHost
import SluiceLoader
import SluiceSDK
import Synchronization
import Testing

/// A sink's RETRY is logged each time it is retried, with the attempt and the wait, not only when retries run out.
struct SinkRetryTests {
    @Test func eachRetryIsLoggedWhenItHappens() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try PluginLoader.load(
            path: try PluginLoaderTests.compile("bad_batch.c", into: directory, as: "libsource", flags: ["-DAS_SOURCE"])
        )
        let sink = try PluginLoader.load(path: try PluginLoaderTests.compile("retry_sink.c", into: directory, as: "libretry"))
        let logged = Mutex<[String]>([])
        let log: PluginLogHandler = { instance, level, message in
            logged.withLock { $0.append("\(level) \(instance): \(message)") }
        }
        var graph = StreamGraph()
        let lines = graph.add(
            "lines",
            .source(try PluginInstance(plugin: source, name: "lines", configJSON: "{}", log: log), maxRecordsPerPartition: 3)
        )
        graph.addSink(.init(name: "out", sink: try PluginInstance(plugin: sink, name: "out", configJSON: "{}", log: log), input: lines))
        let executor = BatchExecutor(graph: graph, parallelism: 1)
        executor.sinkRetryBackoffMilliseconds = 1
        _ = try executor.run(try executor.plan(positions: [:]), info: BatchInfo(id: 7, timeMilliseconds: 0))
        #expect(logged.withLock { $0 } == [
            "3 out: batch 7 asked for a retry (disk busy (1 more)); replaying it from begin in 1 ms, attempt 2 of 6",
            "3 out: batch 7 asked for a retry (disk busy (0 more)); replaying it from begin in 2 ms, attempt 3 of 6",
        ])
    }
}
