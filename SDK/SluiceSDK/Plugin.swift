import CSluice

/// What every plugin declares about itself: the self-description the host reads from the descriptor.
public struct PluginInfo: Sendable {
    /// The unique plugin name used in pipeline files, `[a-z0-9-]+`, e.g. `"file-watch"`.
    public var name: String
    /// The plugin's own version, e.g. `"1.0.0"`.
    public var version: String
    /// One line shown by `sluice plugins list`.
    public var description: String
    /// The configuration options, rendered as the descriptor's JSON Schema.
    public var options: [ConfigOption]
    /// Whether one instance may be called from several threads at once (`SLUICE_FLAG_CONCURRENT`).
    public var concurrent: Bool

    public init(
        name: String,
        version: String,
        description: String,
        options: [ConfigOption] = [],
        concurrent: Bool = false
    ) {
        self.name = name
        self.version = version
        self.description = description
        self.options = options
        self.concurrent = concurrent
    }
}

/// What a plugin instance gets from the host.
public struct PluginContext: @unchecked Sendable {  // the host API struct is immutable and its log is thread-safe
    @usableFromInline let host: UnsafePointer<sluice_host_api>?

    /// The name of this source, stage or sink in the pipeline.
    public let instanceName: String

    /// A directory of this instance's own that survives restarts, when the pipeline runs with checkpoints (ABI
    /// 1.1): where a source keeps what it needs to replay exactly. Nil without checkpoints, or on an older host.
    public let stateDirectory: String?

    /// The host only checks the configuration (`sluice validate`, ABI 1.2): the SDK then calls
    /// ``Plugin/check(configuration:context:)`` instead of `init`.
    public let isCheckOnly: Bool

    /// A context for tests and in-process harnesses: messages go to `logHandler`.
    public init(
        instanceName: String,
        stateDirectory: String? = nil,
        isCheckOnly: Bool = false,
        logHandler: (@Sendable (LogLevel, String) -> Void)? = nil
    ) {
        self.host = nil
        self.instanceName = instanceName
        self.stateDirectory = stateDirectory
        self.isCheckOnly = isCheckOnly
        self.testLog = logHandler
    }

    init(host: UnsafePointer<sluice_host_api>?) {
        self.host = host
        if let host, let name = host.pointee.instance_name {
            instanceName = String(cString: name)
        } else {
            instanceName = ""
        }
        // A 1.0 host's struct ends before state_directory: read it only when struct_size covers it.
        let end = MemoryLayout<sluice_host_api>.offset(of: \sluice_host_api.state_directory)! + MemoryLayout<UnsafeRawPointer>.size
        if let host, Int(host.pointee.struct_size) >= end, let directory = host.pointee.state_directory {
            stateDirectory = String(cString: directory)
        } else {
            stateDirectory = nil
        }
        // Likewise `flags` (ABI 1.2): an older host never asks for a check only.
        let flagsEnd = MemoryLayout<sluice_host_api>.offset(of: \sluice_host_api.flags)! + MemoryLayout<UInt32>.size
        if let host, Int(host.pointee.struct_size) >= flagsEnd {
            isCheckOnly = host.pointee.flags & SLUICE_HOST_CHECK_ONLY != 0
        } else {
            isCheckOnly = false
        }
        testLog = nil
    }

    let testLog: (@Sendable (LogLevel, String) -> Void)?

    /// Logs a message through the host, tagged with this instance's name.
    public func log(_ level: LogLevel, _ message: String) {
        if let testLog { return testLog(level, message) }
        guard let host, let log = host.pointee.log else { return }
        var message = message
        message.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { log(host.pointee.host_ctx, level.rawValue, $0.baseAddress, $0.count) }
        }
    }
}

/// Log levels, as in the ABI.
public enum LogLevel: Int32, Sendable, Comparable {
    case trace = 0, debug, info, warning, error
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Identifies one batch of a pipeline.
public struct BatchInfo: Sendable, Hashable {
    /// 0, 1, 2, ... in order; a replay after a crash reuses the id.
    public var id: UInt64
    /// The batch's scheduled time in milliseconds since the Unix epoch.
    public var timeMilliseconds: Int64

    public init(id: UInt64, timeMilliseconds: Int64) {
        self.id = id
        self.timeMilliseconds = timeMilliseconds
    }
}

/// An error a plugin throws. Its message reaches the host through `last_error`.
///
/// Thrown from `init`, it is a refusal of the configuration (`SLUICE_ERR_CONFIG`: the pipeline file must change)
/// unless made with `unavailable`: a valid configuration that cannot start now, say because a service it needs
/// is unreachable (`SLUICE_ERR`: retrying later may work; `sluice run` exits 1 instead of 2).
public struct PluginError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// False for `unavailable`: the configuration is fine, the start failed.
    public var isConfigurationError: Bool
    public init(_ message: String) {
        self.message = message
        isConfigurationError = true
    }
    /// A start that failed for a reason other than the configuration.
    public static func unavailable(_ message: String) -> PluginError {
        var error = PluginError(message)
        error.isConfigurationError = false
        return error
    }
    public var description: String { message }
}

/// An error a sink throws from `write` or `commit`.
public struct SinkError: Error, CustomStringConvertible, Sendable {
    /// Whether the host should retry the batch (a transient failure) or stop the pipeline.
    public var isRetryable: Bool
    public var message: String

    /// A transient failure: the host retries the whole batch, from `begin`, with the same id.
    public static func retry(_ message: String) -> SinkError { SinkError(isRetryable: true, message: message) }
    /// A permanent failure: the host stops the pipeline without committing the batch.
    public static func fatal(_ message: String) -> SinkError { SinkError(isRetryable: false, message: message) }

    public var description: String { message }
}

// MARK: - The three plugin kinds

/// What all plugins share: a self-description and a way to be made from a configuration.
public protocol Plugin: AnyObject {
    /// The configuration, decoded from the pipeline file's `config:` block (as JSON). Missing options are filled
    /// from the defaults of ``PluginInfo/options`` before decoding, and unknown keys are refused.
    associatedtype Configuration: Decodable = EmptyConfiguration

    /// The plugin's self-description.
    static var info: PluginInfo { get }

    /// Makes an instance. Throw ``PluginError`` (or any error) to refuse the configuration.
    init(configuration: Configuration, context: PluginContext) throws

    /// Checks a configuration without making an instance, for `sluice validate`: called instead of `init` (after the
    /// configuration decoded). Check what you can without side effects — no connections, threads or files written —
    /// and throw ``PluginError`` naming the key. The default accepts every configuration that decodes.
    static func check(configuration: Configuration, context: PluginContext) throws
}

extension Plugin {
    public static func check(configuration: Configuration, context: PluginContext) throws {}
}

/// A configuration with no options.
public struct EmptyConfiguration: Decodable, Sendable {
    public init() {}
}

/// A transform: one batch in, one batch out (map, filter, flatMap, ...).
///
/// Implementation requirements: `transform` reads `input` only during the call and appends the output records to
/// `output`. If ``PluginInfo/concurrent`` is true it may be called from several threads at once.
public protocol TransformPlugin: Plugin {
    func transform(_ input: BatchView, into output: inout BatchBuilder) throws
    /// The shape of the output builder for an input: bytes without keys unless overridden.
    func makeOutput(for input: BatchView) -> BatchBuilder
}

extension TransformPlugin {
    public func makeOutput(for input: BatchView) -> BatchBuilder {
        BatchBuilder(
            valueType: .bytes,
            keyed: false,
            timestamps: input.hasTimestamps,
            expectedCount: input.count,
            expectedBytes: Int(input.raw.value_data_len)
        )
    }
}

/// A direct source: partitions of records at offsets 0, 1, 2, ...; the host plans exact ranges and reads them.
///
/// Implementation requirements: `read` returns exactly the records at `offsets`, and the same records every time
/// it is asked for the same range. If ``PluginInfo/concurrent`` is true, `read` may run on several threads at once.
public protocol SourcePlugin: Plugin {
    /// The current number of partitions. It may grow, never shrink.
    func partitionCount() throws -> Int
    /// The offsets that can be read now in `partition`.
    func available(partition: Int) throws -> Range<UInt64>
    /// Appends the records at `offsets` of `partition` to `output`.
    func read(partition: Int, offsets: Range<UInt64>, into output: inout BatchBuilder) throws
    /// Everything below `offset` in `partition` is processed and committed: forget it. Optional.
    func commit(partition: Int, upTo offset: UInt64) throws
    /// The shape of the batches this source produces: bytes without keys unless overridden.
    func makeOutput(partition: Int, offsets: Range<UInt64>) -> BatchBuilder
}

extension SourcePlugin {
    public func commit(partition: Int, upTo offset: UInt64) throws {}
    public func makeOutput(partition: Int, offsets: Range<UInt64>) -> BatchBuilder {
        BatchBuilder(valueType: .bytes, expectedCount: Int(offsets.count))
    }
}

/// A sink: writes each batch under its id, then commits it.
///
/// Implementation requirements: `begin`, `write` and `commit` are called from one thread, in that order, for each
/// batch. A `begin` for a batch that was begun but not committed must discard what was written for it, so that a
/// replay does not duplicate output. Throw ``SinkError/retry(_:)`` for transient failures.
public protocol SinkPlugin: Plugin {
    func begin(_ batch: BatchInfo) throws
    func write(_ chunk: BatchView) throws
    func commit(_ batch: BatchInfo) throws
}

/// The value types a reducer plugin may combine.
public protocol ReducerValue: BitwiseCopyable, Sendable {
    /// `SLUICE_REDUCE_INT64` or `SLUICE_REDUCE_DOUBLE`.
    static var abiType: UInt32 { get }
}

extension Int64: ReducerValue {
    public static var abiType: UInt32 { SLUICE_REDUCE_INT64 }
}

extension Double: ReducerValue {
    public static var abiType: UInt32 { SLUICE_REDUCE_DOUBLE }
}

/// A reducer (ABI 1.1): the function of `reduceByKey`, the windowed reductions and `updateStateByKey`, combining the
/// values of many keys in one call. Pipelines use it as `function: NAME`.
///
/// Implementation requirements: `combine` must be associative and commutative (the host combines partial results
/// in any grouping); `invert`, when `hasInverse` is true, must undo `combine`, so windows can subtract what leaves
/// them. `out` may be the same memory as `a`.
public protocol ReducerPlugin: Plugin {
    associatedtype Value: ReducerValue
    /// `out[i] = a[i] ⊕ b[i]`.
    func combine(_ a: UnsafeBufferPointer<Value>, _ b: UnsafeBufferPointer<Value>, into out: UnsafeMutableBufferPointer<Value>) throws
    /// Whether `invert` is implemented.
    static var hasInverse: Bool { get }
    /// `out[i] = a[i] ⊖ b[i]`: takes `b` back out of `a`.
    func invert(_ a: UnsafeBufferPointer<Value>, _ b: UnsafeBufferPointer<Value>, into out: UnsafeMutableBufferPointer<Value>) throws
}

extension ReducerPlugin {
    public static var hasInverse: Bool { false }
    public func invert(_ a: UnsafeBufferPointer<Value>, _ b: UnsafeBufferPointer<Value>, into out: UnsafeMutableBufferPointer<Value>) throws {
        throw PluginError("\(Self.info.name) has no inverse")
    }
}
