import CSluice
import SluiceSDK
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A failure reported by a plugin instance through the ABI.
public struct PluginCallError: Error, CustomStringConvertible, Sendable {
    /// The ABI status the plugin returned.
    public var status: Int32
    /// The plugin's `last_error`, or a description of the status.
    public var message: String
    /// Whether a sink asked for a retry.
    public var isRetryable: Bool { status == SLUICE_RETRY }
    public var description: String { message }
}

/// What a state-updater plugin (ABI 1.3) did to one key's state: its `sluice_state_result`, checked and copied.
public enum PluginStateChange: Equatable, Sendable {
    case keep
    case set([UInt8])
    case remove
}

/// A `sluice_state_result` that breaks the rules of docs/abi.md §9b (an unknown action, a bad state pointer or
/// length): a plugin bug, which the conformance checker tells apart from a plugin that reports a failure.
public struct MalformedStateResult: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Receives the log messages of plugin instances.
public typealias PluginLogHandler = @Sendable (_ instance: String, _ level: Int32, _ message: String) -> Void

/// The per-instance host API and what it points to. Lives as long as the instance.
final class HostContext {
    let instanceName: UnsafeMutablePointer<CChar>
    let logHandler: PluginLogHandler
    let name: String
    let api: UnsafeMutablePointer<sluice_host_api>

    let stateDirectory: UnsafeMutablePointer<CChar>?

    init(name: String, stateDirectory: String? = nil, checkOnly: Bool = false, logHandler: @escaping PluginLogHandler) {
        self.name = name
        self.logHandler = logHandler
        instanceName = strdup(name)
        // Absolute, so that a plugin that changes its working directory (or logs the path) is not misled.
        self.stateDirectory = stateDirectory.map { strdup(PluginLoader.absolutePath($0)) }
        api = .allocate(capacity: 1)
        var host = sluice_host_api()
        host.struct_size = UInt32(MemoryLayout<sluice_host_api>.size)
        host.abi_version = SLUICE_ABI_VERSION
        host.instance_name = UnsafePointer(instanceName)
        host.state_directory = self.stateDirectory.map { UnsafePointer($0) }
        host.flags = checkOnly ? SLUICE_HOST_CHECK_ONLY : 0
        host.log = { context, level, message, length in
            guard let context else { return }
            let host = Unmanaged<HostContext>.fromOpaque(context).takeUnretainedValue()
            let text = message.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) }
            host.logHandler(host.name, level, text ?? "")
        }
        api.initialize(to: host)
        api.pointee.host_ctx = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        api.deallocate()
        free(instanceName)
        free(stateDirectory)
    }
}

/// One live instance of a loaded plugin, with typed wrappers for the ABI functions of its kind.
///
/// Calls that the ABI lets the host make concurrently only when the plugin sets `SLUICE_FLAG_CONCURRENT`
/// (`read`, `transform`) are serialised with `lock` otherwise.
public final class PluginInstance: @unchecked Sendable {  // the raw instance is guarded by `lock` unless concurrent
    public let plugin: LoadedPlugin
    public let name: String
    private let instance: UnsafeMutableRawPointer
    private let host: HostContext
    private let lock = Mutex<Void>(())
    private var d: sluice_plugin_v1 { plugin.functions }

    /// Creates an instance with a JSON configuration. Throws the plugin's own explanation when it refuses.
    /// - Parameters:
    ///   - stateDirectory: the instance's own directory that survives restarts (checkpointed pipelines).
    ///   - checkOnly: only have the plugin check the configuration (`SLUICE_HOST_CHECK_ONLY`, for plugins whose
    ///     `canCheckConfiguration`); the instance must then not be used, only released.
    public init(
        plugin: LoadedPlugin,
        name: String,
        configJSON: String,
        stateDirectory: String? = nil,
        checkOnly: Bool = false,
        log: @escaping PluginLogHandler
    ) throws {
        self.plugin = plugin
        self.name = name
        let host = HostContext(name: name, stateDirectory: stateDirectory, checkOnly: checkOnly, logHandler: log)
        self.host = host
        var made: UnsafeMutableRawPointer?
        let d = plugin.functions
        // The plugin receives every option its schema gives a default for, so it need not know the defaults too.
        var json = plugin.schema.fillingDefaults(configJSON)
        let status = json.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { d.create!(plugin.descriptor, host.api, $0.baseAddress, $0.count, &made) }
        }
        guard status == SLUICE_OK, let made else {
            var message = "create() returned status \(status) without an explanation (last_error)"
            if let made {
                if let text = d.last_error!(made) { message = String(cString: text) }
                d.destroy!(made)
            }
            throw PluginCallError(status: status, message: message)
        }
        instance = made
    }

    deinit { d.destroy!(instance) }

    /// Logs a message about this instance from the host's side, where the plugin's own messages go.
    public func log(_ level: Int32, _ message: String) {
        host.logHandler(name, level, message)
    }

    private func failure(_ status: Int32, _ what: String) -> PluginCallError {
        let text = d.last_error!(instance).map { String(cString: $0) }
        return PluginCallError(status: status, message: text ?? "\(what) failed with status \(status)")
    }

    private func serialized<R>(_ body: () throws -> R) rethrows -> R {
        if plugin.isConcurrent { return try body() }
        return try lock.withLock { _ in try body() }
    }

    // MARK: Transform

    /// Runs the transform on `input`. The output keeps `input` alive (it may point into it).
    public func transform(_ input: OwnedBatch) throws -> OwnedBatch {
        var out = Self.emptyBatch
        let status = serialized { input.withUnsafePointer { d.transform!(instance, $0, &out) } }
        guard status == SLUICE_OK else {
            // A failing plugin leaves release NULL or safe to call (docs/abi.md §6); the batch is released here.
            _ = OwnedBatch(taking: out)
            throw failure(status, "transform")
        }
        return try checked(OwnedBatch(taking: out, dependencies: [input]), "transform")
    }

    /// What the host hands a plugin to fill: zeroed, with `struct_size` set, so a plugin that returns no records
    /// may leave it as it is (docs/abi.md §6).
    private static var emptyBatch: sluice_batch {
        var batch = sluice_batch()
        batch.struct_size = UInt32(MemoryLayout<sluice_batch>.size)
        return batch
    }

    /// Returns `batch` when it keeps the batch rules; otherwise releases it and throws an error naming this plugin,
    /// this instance and the field that is wrong, before anything else reads the batch.
    private func checked(_ batch: OwnedBatch, _ call: String, expectedCount: UInt64? = nil) throws -> OwnedBatch {
        guard let problem = BatchRules.violation(in: batch.raw, expectedCount: expectedCount) else { return batch }
        throw PluginCallError(status: SLUICE_ERR, message: "\(qualifiedName): \(call) returned a batch whose \(problem)")
    }

    /// "plugin 'NAME' (PATH), stage 'INSTANCE'", for errors the host finds in what the plugin did.
    public var qualifiedName: String {
        let role: String
        switch plugin.kind {
        case .source: role = "source"
        case .sink: role = "sink"
        case .transform, .reducer, .stateUpdater: role = "stage"
        }
        return "plugin '\(plugin.name)' (\(plugin.path)), \(role) '\(name)'"
    }

    // MARK: Source

    public func partitionCount() throws -> Int {
        var count: UInt32 = 0
        let status = serialized { d.partitions!(instance, &count) }
        guard status == SLUICE_OK else { throw failure(status, "partitions") }
        return Int(count)
    }

    public func available(partition: Int) throws -> Range<UInt64> {
        var start: UInt64 = 0
        var end: UInt64 = 0
        let status = serialized { d.available!(instance, UInt32(partition), &start, &end) }
        guard status == SLUICE_OK else { throw failure(status, "available") }
        guard start <= end else {
            throw PluginCallError(status: SLUICE_ERR, message: "available() returned a reversed range [\(start), \(end))")
        }
        return start..<end
    }

    public func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch {
        var out = Self.emptyBatch
        let status = serialized {
            d.read!(instance, UInt32(partition), offsets.lowerBound, offsets.upperBound, &out)
        }
        guard status == SLUICE_OK else {
            _ = OwnedBatch(taking: out)
            throw failure(status, "read")
        }
        return try checked(
            OwnedBatch(taking: out),
            "read of partition \(partition) [\(offsets.lowerBound), \(offsets.upperBound))",
            expectedCount: UInt64(offsets.count)
        )
    }

    /// Tells the source that the partition is durably processed below `offset`. A source without `commit`
    /// (the function is optional) does not need to hear it.
    public func commit(partition: Int, upTo offset: UInt64) throws {
        guard let commit = d.commit else { return }
        let status = serialized { commit(instance, UInt32(partition), offset) }
        guard status == SLUICE_OK || status == SLUICE_UNSUPPORTED else { throw failure(status, "commit") }
    }

    // MARK: Reducer (ABI 1.1)

    /// `out[i] = a[i] ⊕ b[i]` for `n` 8-byte values, by the plugin's `reduce_combine`.
    public func reduceCombine(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ n: Int) throws {
        let status = serialized { d.reduce_combine!(instance, a, b, out, UInt64(n)) }
        guard status == SLUICE_OK else { throw failure(status, "reduce_combine") }
    }

    /// Whether the plugin has `reduce_invert`.
    public var hasReduceInvert: Bool { d.reduce_invert != nil }

    /// `out[i] = a[i] ⊖ b[i]`, by the plugin's `reduce_invert`.
    public func reduceInvert(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ n: Int) throws {
        guard let invert = d.reduce_invert else {
            throw PluginCallError(status: SLUICE_UNSUPPORTED, message: "reducer '\(plugin.name)' has no reduce_invert")
        }
        let status = serialized { invert(instance, a, b, out, UInt64(n)) }
        guard status == SLUICE_OK else { throw failure(status, "reduce_invert") }
    }

    /// The value type of the plugin's reducer: `SLUICE_REDUCE_INT64` or `SLUICE_REDUCE_DOUBLE`.
    public var reduceValueType: UInt32 { d.reduce_value_type }

    // MARK: State updater (ABI 1.3)

    /// Calls the plugin's `update_state` for one key and checks its answer (docs/abi.md §9b): a status other than
    /// `SLUICE_OK`, an unknown action, or new state bytes with a bad pointer or length throw an error naming the
    /// plugin and the instance. The returned bytes are copied before any other call on the instance can run.
    /// - Parameters:
    ///   - values: the key's records of this batch, without keys (empty for a key with state only).
    ///   - state: the key's previous state, nil for a key without one.
    public func updateState(key: UnsafeRawBufferPointer, values: OwnedBatch, state: [UInt8]?) throws -> PluginStateChange {
        var update = sluice_state_update()
        update.struct_size = UInt32(MemoryLayout<sluice_state_update>.size)
        update.flags = state == nil ? 0 : SLUICE_STATE_PRESENT
        update.key_len = UInt64(key.count)
        var result = sluice_state_result()
        result.struct_size = UInt32(MemoryLayout<sluice_state_result>.size)
        result.action = SLUICE_STATE_KEEP
        // The copy happens inside the lock: a non-concurrent plugin may reuse its buffer on the next call.
        let answer: Result<PluginStateChange, any Error> = serialized {
            Self.withNonNullBase(key) { key in values.withUnsafePointer { batch in
                update.key = key.baseAddress!.assumingMemoryBound(to: UInt8.self)
                update.values = batch
                let status = Self.withOptionalBytes(state) { bytes in
                    update.state = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
                    update.state_len = UInt64(bytes.count)
                    return d.update_state!(instance, &update, &result)
                }
                guard status == SLUICE_OK else { return .failure(failure(status, "update_state")) }
                return Self.stateChange(result).mapError { MalformedStateResult("\(qualifiedName): update_state \($0)") as any Error }
            } }
        }
        return try answer.get()
    }

    /// `body` with the bytes of `state`, or an empty buffer with a NULL base for no state.
    private static func withOptionalBytes<R>(_ state: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let state else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return state.withUnsafeBytes { withNonNullBase($0, body) }
    }

    /// `body` with `bytes`, given an address even when empty: the ABI promises a non-NULL key and, for a key with
    /// state, a non-NULL state, so a plugin need not tell an empty buffer from an absent one by its pointer.
    private static func withNonNullBase<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard bytes.baseAddress == nil else { return body(bytes) }
        return withUnsafeBytes(of: 0 as UInt8) { body(UnsafeRawBufferPointer(start: $0.baseAddress, count: 0)) }
    }

    /// The checked meaning of a result, with its bytes copied; the error says what is wrong with it.
    static func stateChange(_ result: sluice_state_result) -> Result<PluginStateChange, MalformedStateResult> {
        switch result.action {
        case SLUICE_STATE_KEEP: return .success(.keep)
        case SLUICE_STATE_REMOVE: return .success(.remove)
        case SLUICE_STATE_SET:
            guard result.state_len <= UInt64(SLUICE_STATE_MAX_BYTES) else {
                return .failure(MalformedStateResult(
                    "returned a state of \(result.state_len) bytes; the most a key may keep is \(SLUICE_STATE_MAX_BYTES) (SLUICE_STATE_MAX_BYTES)"
                ))
            }
            guard let bytes = result.state else {
                if result.state_len == 0 { return .success(.set([])) }
                return .failure(MalformedStateResult("returned a NULL state of \(result.state_len) bytes"))
            }
            return .success(.set(Array(UnsafeBufferPointer(start: bytes, count: Int(result.state_len)))))
        default:
            return .failure(MalformedStateResult(
                "returned action \(result.action); expected SLUICE_STATE_KEEP (0), SLUICE_STATE_SET (1) or SLUICE_STATE_REMOVE (2)"
            ))
        }
    }

    // MARK: Sink

    public func begin(_ info: BatchInfo) throws {
        var raw = Self.rawInfo(info)
        let status = serialized { d.sink_begin!(instance, &raw) }
        guard status == SLUICE_OK else { throw failure(status, "begin") }
    }

    public func write(_ chunk: OwnedBatch) throws {
        let status = serialized { chunk.withUnsafePointer { d.sink_write!(instance, $0) } }
        guard status == SLUICE_OK else { throw failure(status, "write") }
    }

    public func commit(_ info: BatchInfo) throws {
        var raw = Self.rawInfo(info)
        let status = serialized { d.sink_commit!(instance, &raw) }
        guard status == SLUICE_OK else { throw failure(status, "commit") }
    }

    private static func rawInfo(_ info: BatchInfo) -> sluice_batch_info {
        var raw = sluice_batch_info()
        raw.struct_size = UInt32(MemoryLayout<sluice_batch_info>.size)
        raw.batch_id = info.id
        raw.batch_time_ms = info.timeMilliseconds
        return raw
    }
}
