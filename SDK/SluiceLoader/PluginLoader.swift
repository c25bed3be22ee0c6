import CSluice
import Foundation
import SluiceSDK

#if canImport(Glibc)
import Glibc
#endif

/// The kind of a plugin.
public enum PluginKind: String, Sendable, CaseIterable {
    case source, transform, sink
    /// ABI 1.1: a reduce function for keyed operations.
    case reducer
    /// ABI 1.3: the update function of `updateStateByKey`, over per-key state bytes.
    case stateUpdater = "state-updater"

    init?(abi: UInt32) {
        switch abi {
        case SLUICE_KIND_SOURCE: self = .source
        case SLUICE_KIND_TRANSFORM: self = .transform
        case SLUICE_KIND_SINK: self = .sink
        case SLUICE_KIND_REDUCER: self = .reducer
        case SLUICE_KIND_STATE_UPDATER: self = .stateUpdater
        default: return nil
        }
    }
}

/// A plugin that passed every check: its descriptor stays valid for the life of the process (never unloaded).
public final class LoadedPlugin: @unchecked Sendable {  // immutable; the descriptor is immutable by the ABI
    public let path: String
    /// The plugin's own descriptor, as its entry point returned it (passed back to `create`).
    public let descriptor: UnsafePointer<sluice_plugin_v1>
    /// The host's copy of the descriptor at this host's size: fields past the plugin's `struct_size` (an older
    /// minor) are zero, so reading any field is safe. Read functions and fields here, never through `descriptor`.
    public let functions: sluice_plugin_v1
    public let name: String
    public let version: String
    public let summary: String
    public let kind: PluginKind
    public let abiVersion: UInt32
    public let buildInfo: String
    public let schema: PluginSchema
    public let isConcurrent: Bool
    /// Why the file failed the permission check, when it was loaded anyway (`allowInsecure`); empty when it passed.
    public let insecurity: [String]

    init(
        path: String,
        descriptor: UnsafePointer<sluice_plugin_v1>,
        name: String,
        kind: PluginKind,
        buildInfo: String,
        schema: PluginSchema,
        insecurity: [String]
    ) {
        self.path = path
        self.descriptor = descriptor
        self.name = name
        self.kind = kind
        self.buildInfo = buildInfo
        self.schema = schema
        self.insecurity = insecurity
        let d = PluginLoader.copy(descriptor)
        functions = d
        version = d.version.map { String(cString: $0) } ?? "?"
        summary = d.description.map { String(cString: $0) } ?? ""
        abiVersion = d.abi_version
        isConcurrent = d.flags & SLUICE_FLAG_CONCURRENT != 0
    }

    /// The warning to print for a plugin loaded despite failing the permission check; nil when it passed.
    public var insecurityWarning: String? {
        insecurity.isEmpty
            ? nil
            : "loaded insecure plugin \(path) because of --allow-insecure-plugins: " + insecurity.joined(separator: "; ")
    }

    /// "1.0"
    public var abiDescription: String { "\(abiVersion >> 16).\(abiVersion & 0xFFFF)" }

    /// Built for ABI 1.2 or later: its `create` honours `SLUICE_HOST_CHECK_ONLY`, so the host may ask it to check a
    /// configuration without starting anything. An older plugin would start for real, so it is not asked.
    public var canCheckConfiguration: Bool { abiVersion & 0xFFFF >= 2 }
}

/// Finds, checks, opens and checks again plugin files.
///
/// Before a file is opened, `checkBeforeOpening` checks its permissions and that it exports the entry symbol, so
/// that no constructor of a file that is not a plugin, or that others could have written, ever runs. Every file is
/// then opened with an absolute path and `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE` and never closed:
/// unloading a Swift image leaves the Swift runtime with dangling metadata (see docs/abi.md).
public enum PluginLoader {
    /// The host's build info, against which Swift plugins are checked.
    public static let hostToolchain = sluiceSwiftToolchain
    public static let hostSDKVersion = sluiceSDKVersion

    /// The size of a complete ABI 1.0 descriptor: the smallest a host of this version accepts.
    public static let minimumDescriptorSize =
        MemoryLayout<sluice_plugin_v1>.offset(of: \sluice_plugin_v1.sink_commit)! + MemoryLayout<UnsafeRawPointer>.size

    /// Loads and checks one plugin file. `allowInsecure` loads a file that fails the permission check (the
    /// result's `insecurityWarning` says why) instead of refusing it.
    public static func load(path: String, allowInsecure: Bool = false) throws(PluginLoadError) -> LoadedPlugin {
        try load(path: path, allowInsecure: allowInsecure, searchDirectory: nil)
    }

    /// `load`, also checking `searchDirectory` (where a scan found the file, perhaps as a symlink) and its parents.
    static func load(path: String, allowInsecure: Bool, searchDirectory: String?) throws(PluginLoadError)
        -> LoadedPlugin
    {
        let absolute = absolutePath(path)
        let insecurity = try checkBeforeOpening(absolute, allowInsecure: allowInsecure, searchDirectory: searchDirectory)
        guard let handle = dlopen(absolute, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw PluginLoadError(.notSharedObject, path: absolute, cause: "cannot be loaded as a shared object (\(reason))")
        }
        // No dlclose, even on the failure paths below: see the type's documentation.
        guard let symbol = dlsym(handle, SLUICE_ENTRY_SYMBOL) else {
            throw PluginLoadError(
                .missingEntry,
                path: absolute,
                cause: "no entry symbol '\(SLUICE_ENTRY_SYMBOL)' (not a Sluice plugin, or built without the SDK export)"
            )
        }
        let entry = unsafeBitCast(symbol, to: sluice_entry_fn.self)
        guard let descriptor = entry(SLUICE_ABI_VERSION) else {
            throw PluginLoadError(
                .refusedHost,
                path: absolute,
                cause: "the plugin refused this host's ABI \(SLUICE_ABI_MAJOR).\(SLUICE_ABI_MINOR)"
            )
        }
        return try check(descriptor, path: absolute, insecurity: insecurity)
    }

    /// The fields of `descriptor` that its `struct_size` covers, the rest zero.
    static func copy(_ descriptor: UnsafePointer<sluice_plugin_v1>) -> sluice_plugin_v1 {
        var copy = sluice_plugin_v1()
        let size = min(Int(UnsafeRawPointer(descriptor).load(as: UInt32.self)), MemoryLayout<sluice_plugin_v1>.size)
        withUnsafeMutableBytes(of: &copy) { $0.baseAddress!.copyMemory(from: descriptor, byteCount: size) }
        return copy
    }

    /// The size of an ABI 1.1 descriptor: what a reducer plugin needs.
    public static let reducerDescriptorSize =
        MemoryLayout<sluice_plugin_v1>.offset(of: \sluice_plugin_v1.reduce_invert)! + MemoryLayout<UnsafeRawPointer>.size

    /// The size of an ABI 1.3 descriptor: what a state-updater plugin needs.
    public static let stateUpdaterDescriptorSize =
        MemoryLayout<sluice_plugin_v1>.offset(of: \sluice_plugin_v1.update_state)! + MemoryLayout<UnsafeRawPointer>.size

    /// Checks a descriptor the way `load` does; for descriptors obtained in-process.
    public static func check(_ descriptor: UnsafePointer<sluice_plugin_v1>, path: String) throws(PluginLoadError)
        -> LoadedPlugin
    {
        try check(descriptor, path: path, insecurity: [])
    }

    static func check(_ descriptor: UnsafePointer<sluice_plugin_v1>, path: String, insecurity: [String])
        throws(PluginLoadError) -> LoadedPlugin
    {
        // struct_size and abi_version are the first two fields of every ABI major: safe to read before checking.
        let header = UnsafeRawPointer(descriptor)
        let structSize = Int(header.load(as: UInt32.self))
        let abi = header.load(fromByteOffset: 4, as: UInt32.self)
        if abi >> 16 != SLUICE_ABI_MAJOR {
            throw PluginLoadError(
                .abiMajorMismatch,
                path: path,
                cause: "built for plugin ABI \(abi >> 16).\(abi & 0xFFFF), this host speaks ABI \(SLUICE_ABI_MAJOR).x"
                    + (abi >> 16 > SLUICE_ABI_MAJOR ? " (upgrade sluice)" : " (rebuild the plugin)")
            )
        }
        if structSize < minimumDescriptorSize {
            throw PluginLoadError(
                .descriptorTooSmall,
                path: path,
                cause: "descriptor is \(structSize) bytes; ABI 1.0 needs at least \(minimumDescriptorSize)"
            )
        }
        let d = copy(descriptor)
        guard let namePointer = d.name else {
            throw PluginLoadError(.invalidDescriptor, path: path, cause: "descriptor has no name")
        }
        let name = String(cString: namePointer)
        guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 })
        else {
            throw PluginLoadError(
                .invalidDescriptor,
                path: path,
                cause: "plugin name '\(name)' is invalid: use lower-case letters, digits and '-'"
            )
        }
        guard let kind = PluginKind(abi: d.kind) else {
            throw PluginLoadError(.invalidDescriptor, path: path, cause: "plugin '\(name)' has unknown kind \(d.kind)")
        }
        if kind == .reducer {
            guard structSize >= reducerDescriptorSize else {
                throw PluginLoadError(
                    .descriptorTooSmall,
                    path: path,
                    cause: "reducer plugin '\(name)' has a descriptor of \(structSize) bytes; reducers need ABI 1.1's \(reducerDescriptorSize)"
                )
            }
            guard d.reduce_value_type == SLUICE_REDUCE_INT64 || d.reduce_value_type == SLUICE_REDUCE_DOUBLE else {
                throw PluginLoadError(
                    .invalidDescriptor,
                    path: path,
                    cause: "reducer plugin '\(name)' has unknown reduce_value_type \(d.reduce_value_type)"
                )
            }
        }
        // A state updater's function lies past the 1.1 fields: a shorter descriptor would have it read as NULL (or,
        // from a plugin that lies about its kind, as whatever follows), so it is refused by size first.
        if kind == .stateUpdater && structSize < stateUpdaterDescriptorSize {
            throw PluginLoadError(
                .descriptorTooSmall,
                path: path,
                cause: "state-updater plugin '\(name)' has a descriptor of \(structSize) bytes; state updaters need ABI 1.3's \(stateUpdaterDescriptorSize)"
            )
        }
        let buildInfo = d.build_info.map { String(cString: $0) } ?? ""
        try checkBuildInfo(buildInfo, name: name, path: path)
        if let missing = missingFunction(d, kind: kind) {
            throw PluginLoadError(
                .invalidDescriptor,
                path: path,
                cause: "\(kind.rawValue) plugin '\(name)' has no '\(missing)' function"
            )
        }
        let schemaText = d.config_schema.map { String(cString: $0) } ?? "{}"
        let schema: PluginSchema
        do {
            schema = try PluginSchema(json: schemaText)
        } catch {
            throw PluginLoadError(.invalidSchema, path: path, cause: "plugin '\(name)': \(error)")
        }
        return LoadedPlugin(
            path: path, descriptor: descriptor, name: name, kind: kind, buildInfo: buildInfo, schema: schema,
            insecurity: insecurity
        )
    }

    static func checkBuildInfo(_ info: String, name: String, path: String) throws(PluginLoadError) {
        var fields: [String: String] = [:]
        for part in info.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let toolchain = fields["toolchain"], let sdk = fields["sdk"] else {
            throw PluginLoadError(
                .invalidDescriptor,
                path: path,
                cause: "plugin '\(name)' has build info '\(info)'; expected 'toolchain=...;sdk=...'"
            )
        }
        if toolchain.hasPrefix("swift-") && toolchain != hostToolchain {
            throw PluginLoadError(
                .toolchainMismatch,
                path: path,
                cause: "plugin '\(name)' was built with \(toolchain) but this host with \(hostToolchain); "
                    + "Swift has no stable ABI on Linux: rebuild the plugin with the host's toolchain"
            )
        }
        let major = { (version: String) in version.split(separator: ".").first.map(String.init) ?? version }
        if major(sdk) != major(hostSDKVersion) {
            throw PluginLoadError(
                .sdkMismatch,
                path: path,
                cause: "plugin '\(name)' was built with Sluice SDK \(sdk), this host has SDK \(hostSDKVersion) "
                    + "(the major versions must match)"
            )
        }
    }

    static func missingFunction(_ d: sluice_plugin_v1, kind: PluginKind) -> String? {
        if d.create == nil { return "create" }
        if d.destroy == nil { return "destroy" }
        if d.last_error == nil { return "last_error" }
        switch kind {
        case .transform:
            if d.transform == nil { return "transform" }
        case .source:
            if d.partitions == nil { return "partitions" }
            if d.available == nil { return "available" }
            if d.read == nil { return "read" }
            // commit is optional: a source that need not learn what is processed leaves it NULL.
        case .sink:
            if d.sink_begin == nil { return "sink_begin" }
            if d.sink_write == nil { return "sink_write" }
            if d.sink_commit == nil { return "sink_commit" }
        case .reducer:
            if d.reduce_combine == nil { return "reduce_combine" }
        case .stateUpdater:
            if d.update_state == nil { return "update_state" }
        }
        return nil
    }

    /// The absolute, symlink-resolved form of `path`.
    public static func absolutePath(_ path: String) -> String {
        if let resolved = realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}

/// The result of scanning plugin directories.
public struct PluginCatalog: Sendable {
    /// The plugins that loaded, by name.
    public var plugins: [String: LoadedPlugin]
    /// The files that were refused, in the order they were found.
    public var refusals: [PluginLoadError]
    /// One line per plugin loaded although it failed the permission check (`allowInsecure`), in the order found.
    public var warnings: [String] = []
    /// The directories searched, in order.
    public var directories: [String]
    /// Function-library manifests (`NAME.functions.yaml`, `.yml` or `.json`) by library name, first found first.
    public var functionManifests: [String: String] = [:]

    /// The manifest file suffixes of function libraries.
    public static let manifestSuffixes = [".functions.yaml", ".functions.yml", ".functions.json"]

    /// Loads every `*.so` in `directories`, in order (files within a directory by name). A plugin name found a
    /// second time is refused, naming both files; the first one stays. A file failing the permission check is
    /// refused unless `allowInsecure`, which loads it with a line in `warnings`.
    public static func scan(directories: [String], allowInsecure: Bool = false) -> PluginCatalog {
        var catalog = PluginCatalog(plugins: [:], refusals: [], directories: [], functionManifests: [:])
        var seenFiles = Set<String>()
        for directory in directories {
            let absolute = PluginLoader.absolutePath(directory)
            guard !catalog.directories.contains(absolute) else { continue }
            catalog.directories.append(absolute)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: absolute) else { continue }
            // Function libraries: their manifests are listed, and the .so files they declare (`library:`) are not
            // plugins.
            var functionLibraries = Set<String>()
            for file in names.sorted() {
                guard let suffix = manifestSuffixes.first(where: { file.hasSuffix($0) }) else { continue }
                let path = absolute + "/" + file
                let name = String(file.dropLast(suffix.count))
                if catalog.functionManifests[name] == nil { catalog.functionManifests[name] = path }
                if let library = FunctionManifestLibrary.path(manifest: path) {
                    functionLibraries.insert(PluginLoader.absolutePath(library))
                }
            }
            for file in names.sorted() where file.hasSuffix(".so") {
                let path = PluginLoader.absolutePath(absolute + "/" + file)
                guard !functionLibraries.contains(path) else { continue }
                guard seenFiles.insert(path).inserted else { continue }
                do {
                    let plugin = try PluginLoader.load(path: path, allowInsecure: allowInsecure, searchDirectory: absolute)
                    if let first = catalog.plugins[plugin.name] {
                        catalog.refusals.append(
                            PluginLoadError(
                                .duplicateName,
                                path: path,
                                cause: "plugin name '\(plugin.name)' is already provided by \(first.path); "
                                    + "the first one found is used"
                            )
                        )
                    } else {
                        catalog.plugins[plugin.name] = plugin
                        if let warning = plugin.insecurityWarning { catalog.warnings.append(warning) }
                    }
                } catch {
                    catalog.refusals.append(error)
                }
            }
        }
        return catalog
    }

    /// The plugins sorted by kind, then name.
    public var sorted: [LoadedPlugin] {
        plugins.values.sorted { ($0.kind.rawValue, $0.name) < ($1.kind.rawValue, $1.name) }
    }

    /// The default search path: `explicit` directories, then `$SLUICE_PLUGIN_PATH` (colon-separated), then the
    /// directory of the running executable.
    public static func searchPath(explicit: [String], environment: [String: String] = ProcessInfo.processInfo.environment)
        -> [String]
    {
        var directories = explicit
        if let fromEnvironment = environment["SLUICE_PLUGIN_PATH"] {
            directories += fromEnvironment.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        if let executable = executableDirectory() { directories.append(executable) }
        return directories
    }

    /// The directory holding the running executable.
    public static func executableDirectory() -> String? {
        guard let resolved = realpath("/proc/self/exe", nil) else { return nil }
        defer { free(resolved) }
        let path = String(cString: resolved)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}
