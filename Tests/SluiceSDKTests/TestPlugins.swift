import SluiceSDK
import Synchronization

/// Plugins defined in the tests (the first-party plugin modules each export the same C symbol and cannot be linked
/// into one test binary).

final class Reverse: TransformPlugin {
    struct Configuration: Decodable {
        var repeat_count: Int
        var mode: String
        var tag: String?
    }

    static let info = PluginInfo(
        name: "test-reverse",
        version: "2.1.0",
        description: "Reverses values",
        options: [
            .integer("repeat_count", description: "How many copies of each record", default: 1),
            .string("mode", description: "What to reverse", default: "chars", allowed: ["chars", "none"]),
            .string("tag", description: "An optional tag"),
        ],
        concurrent: true
    )

    let copies: Int
    let reverse: Bool
    init(configuration: Configuration, context: PluginContext) throws {
        guard configuration.repeat_count >= 0 else { throw PluginError("configuration key 'repeat_count': negative") }
        copies = configuration.repeat_count
        reverse = configuration.mode == "chars"
        context.log(.info, "made with \(copies) copies")
    }

    func transform(_ input: BatchView, into output: inout BatchBuilder) throws {
        for i in 0..<input.count {
            let text = input.valueString(at: i)
            for _ in 0..<copies { output.append(reverse ? String(text.reversed()) : text) }
        }
    }
}

/// A source with two fixed partitions; `short` makes `read` return one record too few.
final class FixedSource: SourcePlugin {
    struct Configuration: Decodable { var short: Bool }
    static let info = PluginInfo(
        name: "test-fixed",
        version: "1.0.0",
        description: "Two fixed partitions",
        options: [.boolean("short", description: "Misbehave: read one record too few", default: false)]
    )
    let data = [["a", "b", "c"], ["x", "y"]]
    let short: Bool
    let committed = Mutex<[Int: UInt64]>([:])
    init(configuration: Configuration, context: PluginContext) throws { short = configuration.short }
    func partitionCount() throws -> Int { data.count }
    func available(partition: Int) throws -> Range<UInt64> { 0..<UInt64(data[partition].count) }
    func read(partition: Int, offsets: Range<UInt64>, into output: inout BatchBuilder) throws {
        for offset in offsets.dropLast(short ? 1 : 0) { output.append(data[partition][Int(offset)]) }
    }
    func commit(partition: Int, upTo offset: UInt64) throws { committed.withLock { $0[partition] = offset } }
}

/// A sink that fails as configured: "none", "retry" or "fatal" on every write.
final class ScriptedSink: SinkPlugin {
    struct Configuration: Decodable { var fail: String }
    static let info = PluginInfo(
        name: "test-sink",
        version: "1.0.0",
        description: "Collects records",
        options: [.string("fail", description: "none, retry or fatal", default: "none", allowed: ["none", "retry", "fatal"])]
    )
    let fail: String
    var pending: [String] = []
    var committed: [UInt64: [String]] = [:]
    init(configuration: Configuration, context: PluginContext) throws { fail = configuration.fail }
    func begin(_ batch: BatchInfo) throws { pending = [] }
    func write(_ chunk: BatchView) throws {
        switch fail {
        case "retry": throw SinkError.retry("disk busy")
        case "fatal": throw SinkError.fatal("disk gone")
        default: for i in 0..<chunk.count { pending.append(chunk.displayString(at: i)) }
        }
    }
    func commit(_ batch: BatchInfo) throws { committed[batch.id] = pending }
}

/// A source whose background thread logs until stopped: destroying an instance must stop and join the thread
/// before `destroy` returns (the host frees the log function's context then).
final class TickingSource: SourcePlugin {
    struct Configuration: Decodable {}
    static let info = PluginInfo(name: "test-ticking", version: "1.0.0", description: "Logs from a thread", options: [])

    /// The worker of the instance made last, for the test to inspect after the instance is gone.
    static let lastTicker = Mutex<Ticker?>(nil)

    final class Ticker: Sendable {
        let ticks = Atomic<Int>(0)
        let returned = Atomic<Bool>(false)
        let context: PluginContext
        init(context: PluginContext) { self.context = context }

        func run(_ stop: StopSignal) {
            while !stop.isStopping {
                context.log(.debug, "tick")
                ticks.add(1, ordering: .relaxed)
                _ = stop.sleep(milliseconds: 1)
            }
            returned.store(true, ordering: .sequentiallyConsistent)
        }
    }

    private let thread: PluginThread

    init(configuration: Configuration, context: PluginContext) throws {
        let ticker = Ticker(context: context)
        Self.lastTicker.withLock { $0 = ticker }
        thread = try PluginThread { stop in ticker.run(stop) }
    }

    func partitionCount() throws -> Int { 1 }
    func available(partition: Int) throws -> Range<UInt64> { 0..<0 }
    func read(partition: Int, offsets: Range<UInt64>, into output: inout BatchBuilder) throws {}
}

/// A Swift reducer plugin with an inverse: integer sum.
final class SumReducer: ReducerPlugin {
    static let info = PluginInfo(name: "test-sum", version: "1.0.0", description: "Sums integers", options: [], concurrent: true)
    static let hasInverse = true
    init(configuration: EmptyConfiguration, context: PluginContext) throws {}
    func combine(_ a: UnsafeBufferPointer<Int64>, _ b: UnsafeBufferPointer<Int64>, into out: UnsafeMutableBufferPointer<Int64>) throws {
        for i in 0..<out.count { out[i] = a[i] &+ b[i] }
    }
    func invert(_ a: UnsafeBufferPointer<Int64>, _ b: UnsafeBufferPointer<Int64>, into out: UnsafeMutableBufferPointer<Int64>) throws {
        for i in 0..<out.count { out[i] = a[i] &- b[i] }
    }
}

/// A Swift reducer plugin without an inverse, over doubles, that fails on NaN.
final class MaxReducer: ReducerPlugin {
    static let info = PluginInfo(name: "test-max", version: "1.0.0", description: "Maximum of doubles", options: [])
    init(configuration: EmptyConfiguration, context: PluginContext) throws {}
    func combine(_ a: UnsafeBufferPointer<Double>, _ b: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>) throws {
        for i in 0..<out.count {
            if a[i].isNaN || b[i].isNaN { throw PluginError("NaN at \(i)") }
            out[i] = max(a[i], b[i])
        }
    }
}
