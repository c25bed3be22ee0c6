import SluiceLoader
import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a Swift plugin type in-process, through its real C descriptor and thunks, without dlopen.
///
/// ```swift
/// let split = try PluginHarness(SplitTransform.self, config: #"{"output":"pairs"}"#)
/// #expect(try split.transform([Record("a b")]) == [Record(int: 1, key: "a"), Record(int: 1, key: "b")])
/// ```
///
/// The configuration goes through the same decoding as in the host (defaults, unknown keys, types), and every call
/// crosses the same C function table a host uses, so a plugin that passes here behaves the same when loaded.
public final class PluginHarness: @unchecked Sendable {  // `logs` is guarded by its mutex; the instance by the ABI
    /// The checked descriptor, as the host's loader sees it.
    public let plugin: LoadedPlugin
    /// The live instance.
    public let instance: PluginInstance
    private let captured = LogStore()

    // `stateDirectory`: the instance's own directory that survives restarts (`PluginContext.stateDirectory`, which a
    // host gives only in a checkpointed pipeline); nil by default, as without checkpoints.

    /// A transform plugin.
    public convenience init<T: TransformPlugin>(
        _ type: T.Type, config: String = "{}", name: String = "test", stateDirectory: String? = nil
    ) throws {
        try self.init(
            PluginExport.descriptor(for: type, hostABI: SLUICE_ABI_VERSION), String(describing: type), config, name, stateDirectory
        )
    }

    /// A source plugin.
    public convenience init<T: SourcePlugin>(
        _ type: T.Type, config: String = "{}", name: String = "test", stateDirectory: String? = nil
    ) throws {
        try self.init(
            PluginExport.descriptor(for: type, hostABI: SLUICE_ABI_VERSION), String(describing: type), config, name, stateDirectory
        )
    }

    /// A sink plugin.
    public convenience init<T: SinkPlugin>(
        _ type: T.Type, config: String = "{}", name: String = "test", stateDirectory: String? = nil
    ) throws {
        try self.init(
            PluginExport.descriptor(for: type, hostABI: SLUICE_ABI_VERSION), String(describing: type), config, name, stateDirectory
        )
    }

    /// A state-updater plugin (ABI 1.3); call it with ``update(key:values:state:)``.
    public convenience init<T: StateUpdaterPlugin>(_ type: T.Type, config: String = "{}", name: String = "test") throws {
        try self.init(PluginExport.descriptor(for: type, hostABI: SLUICE_ABI_VERSION), String(describing: type), config, name, nil)
    }

    private init(
        _ descriptor: UnsafePointer<sluice_plugin_v1>?, _ typeName: String, _ config: String, _ name: String,
        _ stateDirectory: String?
    ) throws {
        guard let descriptor else { throw PluginError("\(typeName) refused the host ABI") }
        plugin = try PluginLoader.check(descriptor, path: "<in-process \(typeName)>")
        let captured = self.captured
        instance = try PluginInstance(plugin: plugin, name: name, configJSON: config, stateDirectory: stateDirectory) {
            _, level, message in
            captured.entries.withLock { $0.append((LogLevel(rawValue: level) ?? .info, message)) }
        }
    }

    /// What the plugin logged, in order.
    public var logs: [(level: LogLevel, message: String)] { captured.entries.withLock { $0 } }

    // MARK: Transforms

    /// Runs the transform on a batch of `records` and returns the output records.
    public func transform(_ records: [Record]) throws -> [Record] {
        try instance.transform(.of(records)).records
    }

    // MARK: Sources

    public func partitionCount() throws -> Int { try instance.partitionCount() }

    public func available(partition: Int = 0) throws -> Range<UInt64> { try instance.available(partition: partition) }

    /// Reads `offsets` of `partition`.
    public func read(partition: Int = 0, offsets: Range<UInt64>) throws -> [Record] {
        try instance.read(partition: partition, offsets: offsets).records
    }

    /// Reads everything available now in `partition`.
    public func readAvailable(partition: Int = 0) throws -> [Record] {
        try read(partition: partition, offsets: try available(partition: partition))
    }

    /// Tells the source that everything below `offset` is committed (the host does this after the sinks commit, and
    /// once with each recovered position after a restart).
    public func commit(partition: Int = 0, upTo offset: UInt64) throws { try instance.commit(partition: partition, upTo: offset) }

    /// Polls `available` until at least `count` records are there or `timeout` seconds pass; returns the range.
    public func waitForAvailable(_ count: UInt64, partition: Int = 0, timeout: Double = 10) throws -> Range<UInt64> {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while true {
            let range = try available(partition: partition)
            if range.count >= count || ContinuousClock.now >= deadline { return range }
            usleep(10_000)
        }
    }

    // MARK: Sinks

    /// Writes one batch the way the host does: begin, one write per chunk, commit.
    public func write(batch id: UInt64, time: Int64 = 0, chunks: [[Record]]) throws {
        let info = BatchInfo(id: id, timeMilliseconds: time)
        try instance.begin(info)
        for chunk in chunks { try instance.write(.of(chunk)) }
        try instance.commit(info)
    }
}

extension PluginHarness {
    // MARK: State updaters

    /// Updates one key as `updateStateByKey` does each batch: `values` are the key's records of the batch (their
    /// keys are dropped; none for an idle key), `state` its previous state (nil for a new key). Returns the checked
    /// answer: `.set(bytes)`, `.keep` or `.remove`.
    public func update(key: String, values: [Record], state: [UInt8]?) throws -> PluginStateChange {
        let unkeyed = values.map { record in
            var record = record
            record.key = nil
            return record
        }
        return try Array(key.utf8).withUnsafeBytes { try instance.updateState(key: $0, values: .of(unkeyed), state: state) }
    }
}

/// Log messages captured from a plugin instance.
final class LogStore: Sendable {
    let entries = Mutex<[(level: LogLevel, message: String)]>([])
}
