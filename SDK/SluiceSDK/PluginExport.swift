import CSluice
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds the C descriptor of a Swift plugin type. A plugin exports it with one line:
///
/// ```swift
/// @c(sluice_plugin_entry_v1) public func sluicePluginEntry(_ host: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
///     PluginExport.descriptor(for: MyTransform.self, hostABI: host)
/// }
/// ```
public enum PluginExport {
    /// The descriptor of a transform plugin, or nil when the host's ABI major differs from the SDK's.
    public static func descriptor<T: TransformPlugin>(for type: T.Type, hostABI: UInt32)
        -> UnsafePointer<sluice_plugin_v1>?
    {
        descriptor(T.self, kind: SLUICE_KIND_TRANSFORM, hostABI: hostABI) { host, json in
            try instance(T.self, host, json) { plugin in InstanceBox(transform: plugin) }
        }
    }

    /// The descriptor of a source plugin, or nil when the host's ABI major differs from the SDK's.
    public static func descriptor<T: SourcePlugin>(for type: T.Type, hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>?
    {
        descriptor(T.self, kind: SLUICE_KIND_SOURCE, hostABI: hostABI) { host, json in
            try instance(T.self, host, json) { plugin in InstanceBox(source: plugin) }
        }
    }

    /// The descriptor of a sink plugin, or nil when the host's ABI major differs from the SDK's.
    public static func descriptor<T: SinkPlugin>(for type: T.Type, hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
        descriptor(T.self, kind: SLUICE_KIND_SINK, hostABI: hostABI) { host, json in
            try instance(T.self, host, json) { plugin in InstanceBox(sink: plugin) }
        }
    }

    /// The descriptor of a reducer plugin (ABI 1.1), or nil when the host's ABI major differs from the SDK's.
    public static func descriptor<T: ReducerPlugin>(for type: T.Type, hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
        descriptor(T.self, kind: SLUICE_KIND_REDUCER, hostABI: hostABI, reducer: (T.Value.abiType, T.hasInverse)) { host, json in
            try instance(T.self, host, json) { plugin in InstanceBox(reducer: ReducerCalls(plugin)) }
        }
    }

    /// Decodes the configuration and makes the plugin, wrapped for the ABI; when the host only checks the
    /// configuration (ABI 1.2), runs the plugin's `check` instead and returns an instance that holds nothing.
    static func instance<T: Plugin>(
        _ type: T.Type, _ host: UnsafePointer<sluice_host_api>?, _ json: [UInt8], _ wrap: (T) -> InstanceBox
    ) throws -> InstanceBox {
        let context = PluginContext(host: host)
        let configuration = try decodeConfiguration(T.self, json)
        if context.isCheckOnly {
            try T.check(configuration: configuration, context: context)
            return InstanceBox()
        }
        return wrap(try T(configuration: configuration, context: context))
    }

    static func decodeConfiguration<T: Plugin>(_ type: T.Type, _ json: [UInt8]) throws -> T.Configuration {
        try ConfigurationDecoder.decode(T.Configuration.self, from: json, options: T.info.options)
    }

    /// Descriptors live for the life of the process; one per plugin type.
    private static let descriptors = Mutex<[ObjectIdentifier: UInt]>([:])

    static func descriptor<T: Plugin>(
        _ type: T.Type,
        kind: UInt32,
        hostABI: UInt32,
        reducer: (valueType: UInt32, hasInverse: Bool)? = nil,
        make: @escaping (UnsafePointer<sluice_host_api>?, [UInt8]) throws -> InstanceBox
    ) -> UnsafePointer<sluice_plugin_v1>? {
        guard hostABI >> 16 == SLUICE_ABI_VERSION >> 16 else { return nil }
        let address: UInt = descriptors.withLock { table in
            if let existing = table[ObjectIdentifier(type)] { return existing }
            let made = UInt(bitPattern: makeDescriptor(info: T.info, kind: kind, reducer: reducer, factory: PluginFactory(make: make)))
            table[ObjectIdentifier(type)] = made
            return made
        }
        return UnsafePointer(bitPattern: address)
    }

    private static func makeDescriptor(
        info: PluginInfo,
        kind: UInt32,
        reducer: (valueType: UInt32, hasInverse: Bool)?,
        factory: PluginFactory
    ) -> UnsafeMutablePointer<sluice_plugin_v1> {
        var d = sluice_plugin_v1()
        d.struct_size = UInt32(MemoryLayout<sluice_plugin_v1>.size)
        d.abi_version = SLUICE_ABI_VERSION
        d.kind = kind
        d.flags = info.concurrent ? SLUICE_FLAG_CONCURRENT : 0
        d.name = UnsafePointer(strdup(info.name))
        d.version = UnsafePointer(strdup(info.version))
        d.description = UnsafePointer(strdup(info.description))
        d.build_info = UnsafePointer(strdup(sluiceBuildInfo))
        d.config_schema = UnsafePointer(strdup(info.configSchemaJSON))
        d.plugin_data = Unmanaged.passRetained(factory).toOpaque()
        d.create = pluginCreate
        d.destroy = pluginDestroy
        d.last_error = pluginLastError
        switch kind {
        case SLUICE_KIND_TRANSFORM:
            d.transform = pluginTransform
        case SLUICE_KIND_SOURCE:
            d.partitions = sourcePartitions
            d.available = sourceAvailable
            d.read = sourceRead
            d.commit = sourceCommit
        case SLUICE_KIND_REDUCER:
            d.reduce_value_type = reducer?.valueType ?? SLUICE_REDUCE_INT64
            d.reduce_combine = reducerCombine
            d.reduce_invert = reducer?.hasInverse == true ? reducerInvert : nil
        case SLUICE_KIND_STATE_UPDATER:
            d.update_state = stateUpdate
        default:
            d.sink_begin = sinkBegin
            d.sink_write = sinkWrite
            d.sink_commit = sinkCommit
        }
        let pointer = UnsafeMutablePointer<sluice_plugin_v1>.allocate(capacity: 1)
        pointer.initialize(to: d)
        return pointer
    }
}

/// Makes instances of one plugin type; the descriptor's `plugin_data`.
final class PluginFactory {
    let make: (UnsafePointer<sluice_host_api>?, [UInt8]) throws -> InstanceBox
    init(make: @escaping (UnsafePointer<sluice_host_api>?, [UInt8]) throws -> InstanceBox) { self.make = make }
}

/// One plugin instance behind the ABI's `void *instance`.
final class InstanceBox {
    let transform: (any TransformPlugin)?
    let source: (any SourcePlugin)?
    let sink: (any SinkPlugin)?
    let reducer: ReducerCalls?
    let stateUpdater: StateUpdaterCalls?
    /// The last error message as a C string; guarded by the mutex because a concurrent plugin may fail on
    /// several threads at once.
    private let lastError = Mutex<UInt>(0)

    init(
        transform: (any TransformPlugin)? = nil,
        source: (any SourcePlugin)? = nil,
        sink: (any SinkPlugin)? = nil,
        reducer: ReducerCalls? = nil,
        stateUpdater: StateUpdaterCalls? = nil
    ) {
        self.transform = transform
        self.source = source
        self.sink = sink
        self.reducer = reducer
        self.stateUpdater = stateUpdater
    }

    /// An instance that failed to be created: it only carries the error.
    convenience init(failure: any Error) {
        self.init()
        setError(failure)
    }

    func setError(_ error: any Error) {
        let message: String
        switch error {
        case let error as PluginError: message = error.message
        case let error as SinkError: message = error.message
        default: message = String(describing: error)
        }
        let copy = UInt(bitPattern: strdup(message))
        lastError.withLock { current in
            free(UnsafeMutableRawPointer(bitPattern: current))
            current = copy
        }
    }

    var lastErrorPointer: UnsafePointer<CChar>? {
        lastError.withLock { UnsafePointer(bitPattern: $0) }
    }

    deinit {
        lastError.withLock { free(UnsafeMutableRawPointer(bitPattern: $0)) }
    }
}

@inline(__always)
func withInstance<R>(_ instance: UnsafeMutableRawPointer?, _ body: (InstanceBox) -> R) -> R {
    Unmanaged<InstanceBox>.fromOpaque(instance!)._withUnsafeGuaranteedRef(body)
}

// MARK: - Lifecycle thunks

private func pluginCreate(
    _ descriptor: UnsafePointer<sluice_plugin_v1>?,
    _ host: UnsafePointer<sluice_host_api>?,
    _ config: UnsafePointer<CChar>?,
    _ length: Int,
    _ instance: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> Int32 {
    guard let descriptor, let instance, let data = descriptor.pointee.plugin_data else { return SLUICE_ERR }
    let factory = Unmanaged<PluginFactory>.fromOpaque(data).takeUnretainedValue()
    let json = config.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
    do {
        instance.pointee = Unmanaged.passRetained(try factory.make(host, json)).toOpaque()
        return SLUICE_OK
    } catch {
        instance.pointee = Unmanaged.passRetained(InstanceBox(failure: error)).toOpaque()
        return (error as? PluginError)?.isConfigurationError == false ? SLUICE_ERR : SLUICE_ERR_CONFIG
    }
}

private func pluginDestroy(_ instance: UnsafeMutableRawPointer?) {
    guard let instance else { return }
    Unmanaged<InstanceBox>.fromOpaque(instance).release()
}

private func pluginLastError(_ instance: UnsafeMutableRawPointer?) -> UnsafePointer<CChar>? {
    guard let instance else { return nil }
    return withInstance(instance) { $0.lastErrorPointer }
}

// MARK: - Transform thunk

private func pluginTransform(
    _ instance: UnsafeMutableRawPointer?,
    _ input: UnsafePointer<sluice_batch>?,
    _ output: UnsafeMutablePointer<sluice_batch>?
) -> Int32 {
    withInstance(instance) { box in
        guard let plugin = box.transform, let input, let output else { return SLUICE_UNSUPPORTED }
        let view = BatchView(input)
        var builder = plugin.makeOutput(for: view)
        do {
            try plugin.transform(view, into: &builder)
        } catch {
            box.setError(error)
            return SLUICE_ERR
        }
        builder.finish(into: output)
        return SLUICE_OK
    }
}

// MARK: - Source thunks

private func sourcePartitions(_ instance: UnsafeMutableRawPointer?, _ count: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withInstance(instance) { box in
        guard let plugin = box.source, let count else { return SLUICE_UNSUPPORTED }
        do {
            count.pointee = UInt32(try plugin.partitionCount())
            return SLUICE_OK
        } catch {
            box.setError(error)
            return SLUICE_ERR
        }
    }
}

private func sourceAvailable(
    _ instance: UnsafeMutableRawPointer?,
    _ partition: UInt32,
    _ start: UnsafeMutablePointer<UInt64>?,
    _ end: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    withInstance(instance) { box in
        guard let plugin = box.source, let start, let end else { return SLUICE_UNSUPPORTED }
        do {
            let range = try plugin.available(partition: Int(partition))
            start.pointee = range.lowerBound
            end.pointee = range.upperBound
            return SLUICE_OK
        } catch {
            box.setError(error)
            return SLUICE_ERR
        }
    }
}

private func sourceRead(
    _ instance: UnsafeMutableRawPointer?,
    _ partition: UInt32,
    _ from: UInt64,
    _ to: UInt64,
    _ output: UnsafeMutablePointer<sluice_batch>?
) -> Int32 {
    withInstance(instance) { box in
        guard let plugin = box.source, let output else { return SLUICE_UNSUPPORTED }
        guard from <= to else {
            box.setError(PluginError("read: empty or reversed range [\(from), \(to))"))
            return SLUICE_ERR
        }
        var builder = plugin.makeOutput(partition: Int(partition), offsets: from..<to)
        do {
            try plugin.read(partition: Int(partition), offsets: from..<to, into: &builder)
        } catch {
            box.setError(error)
            return SLUICE_ERR
        }
        guard builder.count == Int(to - from) else {
            box.setError(
                PluginError("read of partition \(partition) [\(from), \(to)) produced \(builder.count) records, not \(to - from)")
            )
            return SLUICE_ERR
        }
        builder.finish(into: output)
        return SLUICE_OK
    }
}

private func sourceCommit(_ instance: UnsafeMutableRawPointer?, _ partition: UInt32, _ offset: UInt64) -> Int32 {
    withInstance(instance) { box in
        guard let plugin = box.source else { return SLUICE_UNSUPPORTED }
        do {
            try plugin.commit(partition: Int(partition), upTo: offset)
            return SLUICE_OK
        } catch {
            box.setError(error)
            return SLUICE_ERR
        }
    }
}

// MARK: - Sink thunks

private func sinkResult(_ box: InstanceBox, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return SLUICE_OK
    } catch let error as SinkError {
        box.setError(error)
        return error.isRetryable ? SLUICE_RETRY : SLUICE_FATAL
    } catch {
        box.setError(error)
        return SLUICE_FATAL
    }
}

private func batchInfo(_ info: UnsafePointer<sluice_batch_info>) -> BatchInfo {
    BatchInfo(id: info.pointee.batch_id, timeMilliseconds: info.pointee.batch_time_ms)
}

private func sinkBegin(_ instance: UnsafeMutableRawPointer?, _ info: UnsafePointer<sluice_batch_info>?) -> Int32 {
    withInstance(instance) { box in
        guard let plugin = box.sink, let info else { return SLUICE_UNSUPPORTED }
        return sinkResult(box) { try plugin.begin(batchInfo(info)) }
    }
}

private func sinkWrite(_ instance: UnsafeMutableRawPointer?, _ chunk: UnsafePointer<sluice_batch>?) -> Int32 {
    withInstance(instance) { box in
        guard let plugin = box.sink, let chunk else { return SLUICE_UNSUPPORTED }
        return sinkResult(box) { try plugin.write(BatchView(chunk)) }
    }
}

private func sinkCommit(_ instance: UnsafeMutableRawPointer?, _ info: UnsafePointer<sluice_batch_info>?) -> Int32 {
    withInstance(instance) { box in
        guard let plugin = box.sink, let info else { return SLUICE_UNSUPPORTED }
        return sinkResult(box) { try plugin.commit(batchInfo(info)) }
    }
}

// MARK: - Reducer thunks (ABI 1.1)

/// A reducer plugin's functions with its value type erased to 8-byte slots.
final class ReducerCalls {
    let combine: (UnsafeRawPointer, UnsafeRawPointer, UnsafeMutableRawPointer, Int) throws -> Void
    let invert: (UnsafeRawPointer, UnsafeRawPointer, UnsafeMutableRawPointer, Int) throws -> Void

    init<T: ReducerPlugin>(_ plugin: T) {
        func typed(_ body: @escaping (UnsafeBufferPointer<T.Value>, UnsafeBufferPointer<T.Value>, UnsafeMutableBufferPointer<T.Value>) throws -> Void)
            -> (UnsafeRawPointer, UnsafeRawPointer, UnsafeMutableRawPointer, Int) throws -> Void
        {
            { a, b, out, n in
                try body(
                    UnsafeBufferPointer(start: a.assumingMemoryBound(to: T.Value.self), count: n),
                    UnsafeBufferPointer(start: b.assumingMemoryBound(to: T.Value.self), count: n),
                    UnsafeMutableBufferPointer(start: out.assumingMemoryBound(to: T.Value.self), count: n)
                )
            }
        }
        combine = typed { try plugin.combine($0, $1, into: $2) }
        invert = typed { try plugin.invert($0, $1, into: $2) }
    }
}

private func reducerCall(
    _ instance: UnsafeMutableRawPointer?,
    _ a: UnsafeRawPointer?,
    _ b: UnsafeRawPointer?,
    _ out: UnsafeMutableRawPointer?,
    _ n: UInt64,
    _ pick: (ReducerCalls) -> (UnsafeRawPointer, UnsafeRawPointer, UnsafeMutableRawPointer, Int) throws -> Void
) -> Int32 {
    withInstance(instance) { box in
        guard let calls = box.reducer else { return SLUICE_ERR }
        guard n > 0 else { return SLUICE_OK }
        guard let a, let b, let out else {
            box.setError(PluginError("reducer called with a NULL buffer"))
            return SLUICE_ERR
        }
        do {
            try pick(calls)(a, b, out, Int(n))
            return SLUICE_OK
        } catch {
            box.setError(error)
            return SLUICE_ERR
        }
    }
}

private func reducerCombine(
    _ instance: UnsafeMutableRawPointer?, _ a: UnsafeRawPointer?, _ b: UnsafeRawPointer?, _ out: UnsafeMutableRawPointer?, _ n: UInt64
) -> Int32 {
    reducerCall(instance, a, b, out, n) { $0.combine }
}

private func reducerInvert(
    _ instance: UnsafeMutableRawPointer?, _ a: UnsafeRawPointer?, _ b: UnsafeRawPointer?, _ out: UnsafeMutableRawPointer?, _ n: UInt64
) -> Int32 {
    reducerCall(instance, a, b, out, n) { $0.invert }
}
