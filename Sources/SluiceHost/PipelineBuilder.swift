import Foundation
import SluiceCore
import SluiceFunctions
import SluiceLoader
import SluiceSDK

/// A pipeline checked against the available plugins: every name resolves, every configuration matches its
/// plugin's schema (and is converted to JSON), and the stages are in dependency order.
public struct ResolvedPipeline: @unchecked Sendable {  // LoadedPlugin is Sendable; ConfigValue tuples are values
    public struct Component {
        public var name: String
        public var role: String
        public var plugin: LoadedPlugin
        public var configJSON: String
        public var configLocation: SourceLocation
        /// The values of the plugin's secret options (`ConfigOption.secret`), to mask in whatever it says.
        public var secrets: [String] = []
    }

    /// Every plugin instance the pipeline makes: sources, plugin stages in dependency order, sinks, then reducer
    /// and state-updater plugins by stage name.
    public var components: [Component] {
        sources + stages.compactMap(\.component) + sinks
            + reducerPlugins.merging(stateUpdaterPlugins) { first, _ in first }.sorted { $0.key < $1.key }.map(\.value)
    }

    /// Every secret value of every plugin in the pipeline: masked in every message the host prints.
    public var secrets: [String] { components.flatMap(\.secrets) + spec.substitutedValues }

    /// The error for a plugin whose `create` failed, at its `config` block with secrets masked. `SLUICE_ERR_CONFIG`
    /// is a problem in the file ("refused its configuration"); any other status is a plugin that cannot start with a
    /// valid configuration, say because a service it needs is down ("could not start"), which the file cannot fix.
    func createFailure(_ component: Component, _ error: any Error) -> (error: PipelineError, isStartFailure: Bool) {
        let call = error as? PluginCallError
        let refused = (call?.status ?? SLUICE_ERR_CONFIG) == SLUICE_ERR_CONFIG
        let at = component.configLocation
        let message = "plugin '\(component.plugin.name)' \(refused ? "refused its configuration" : "could not start"): "
            + SecretMask.mask(call?.message ?? "\(error)", hiding: secrets)
        return (PipelineError(file: spec.file, line: at.line, column: at.column, keyPath: at.keyPath, message: message), !refused)
    }

    public var spec: PipelineSpec
    public var sources: [Component]
    /// Stages in dependency order; a plugin stage has a component.
    public var stages: [(stage: PipelineSpec.Stage, component: Component?)]
    public var sinks: [Component]
    /// The library function of each `map`/`filter` stage, by stage name.
    public var functions: [String: NativeFunction] = [:]
    /// The custom reducer of each keyed stage that names a library's reduce function, by stage name.
    public var reducers: [String: any CustomReducer] = [:]
    /// The reducer plugin of each keyed stage that names one, by stage name.
    public var reducerPlugins: [String: Component] = [:]
    /// The state-updater plugin (ABI 1.3) of each `updateStateByKey` stage that names one, by stage name.
    public var stateUpdaterPlugins: [String: Component] = [:]
}

/// Checks a pipeline against the plugin catalog and builds its operator graph.
public enum PipelineBuilder {
    /// Resolves plugins, checks stream references and configurations. Collects every problem.
    public static func resolve(_ spec: PipelineSpec, catalog: PluginCatalog) throws(PipelineErrors) -> ResolvedPipeline {
        var errors: [PipelineError] = []
        func fail(_ at: SourceLocation, _ message: String) {
            let shown = SecretMask.mask(message, hiding: spec.substitutedValues)
            errors.append(PipelineError(file: spec.file, line: at.line, column: at.column, keyPath: at.keyPath, message: shown))
        }
        let baseDirectory = URL(fileURLWithPath: spec.file).deletingLastPathComponent().path

        func component(_ name: String, role: String, kind: PluginKind, plugin: String, at: SourceLocation, config: ConfigValue?)
            -> ResolvedPipeline.Component?
        {
            guard let loaded = catalog.plugins[plugin] else {
                let hint = didYouMean(plugin, among: catalog.plugins.values.filter { $0.kind == kind }.map(\.name))
                let refused = catalog.refusals.isEmpty ? "" : "; \(catalog.refusals.count) plugin file(s) were refused"
                fail(
                    at,
                    "no \(kind.rawValue) plugin named '\(plugin)'\(hint)\(refused) (see `sluice plugins list`; "
                        + "searched: \(catalog.directories.joined(separator: ", ")))"
                )
                return nil
            }
            guard loaded.kind == kind else {
                fail(at, "plugin '\(plugin)' is a \(loaded.kind.rawValue), but \(role)s need a \(kind.rawValue) plugin")
                return nil
            }
            let configLocation = config?.location ?? at
            var converter = ConfigConverter(schema: loaded.schema, plugin: plugin, baseDirectory: baseDirectory)
            let json = converter.json(config, at: configLocation.keyPath.isEmpty ? at : configLocation)
            for problem in converter.problems { fail(problem.0, SecretMask.mask(problem.1, hiding: converter.secrets)) }
            return ResolvedPipeline.Component(
                name: name,
                role: role,
                plugin: loaded,
                configJSON: json,
                configLocation: configLocation,
                secrets: converter.secrets
            )
        }

        var sources: [ResolvedPipeline.Component] = []
        for source in spec.sources {
            if let resolved = component(
                source.name,
                role: "source",
                kind: .source,
                plugin: source.plugin,
                at: source.pluginLocation,
                config: source.config
            ) {
                sources.append(resolved)
            }
        }

        // Function libraries, loaded once each, on first use.
        var libraries: [String: Result<FunctionLibrary, FunctionLibraryError>] = [:]
        var functions: [String: NativeFunction] = [:]
        var reducers: [String: any CustomReducer] = [:]
        var reducerPlugins: [String: ResolvedPipeline.Component] = [:]
        var stateUpdaterPlugins: [String: ResolvedPipeline.Component] = [:]
        func resolveFunction(_ reference: String, kind: FunctionKind, at location: SourceLocation) -> NativeFunction? {
            let parts = reference.split(separator: ".", maxSplits: 1).map(String.init)
            let (libraryName, functionName) = (parts[0], parts.count > 1 ? parts[1] : "")
            guard let manifest = catalog.functionManifests[libraryName] else {
                let known = Array(catalog.functionManifests.keys)
                fail(location, "no function library named '\(libraryName)'" + didYouMean(libraryName, among: known)
                    + "; a library is a NAME.functions.yaml manifest beside its .so in a plugin directory")
                return nil
            }
            if libraries[libraryName] == nil {
                libraries[libraryName] = Result { () throws(FunctionLibraryError) in try FunctionLibrary(manifest: manifest) }
            }
            switch libraries[libraryName]! {
            case .failure(let error):
                fail(location, "function library '\(libraryName)' cannot be used: \(error)")
                return nil
            case .success(let library):
                guard let function = library.functions[functionName] else {
                    fail(location, "library '\(libraryName)' (\(manifest)) has no function '\(functionName)'"
                        + didYouMean(functionName, among: Array(library.functions.keys)))
                    return nil
                }
                guard function.shape.kind == kind else {
                    fail(location, "'\(reference)' is a \(function.shape.kind.rawValue) function (\(function.shape)); "
                        + "\(kind.rawValue) needs a \(kind.rawValue) function")
                    return nil
                }
                return function
            }
        }

        // Stream references and dependency order.
        let streamNames = spec.sources.map(\.name) + spec.stages.map(\.name)
        let knownStreams = Set(streamNames)
        for stage in spec.stages {
            for input in stage.from where !knownStreams.contains(input.name) {
                fail(input.location, "no source or stage named '\(input.name)'" + didYouMean(input.name, among: streamNames))
            }
            if stage.from.contains(where: { $0.name == stage.name }) {
                fail(stage.from.first { $0.name == stage.name }!.location, "stage '\(stage.name)' reads from itself")
            }
        }
        let ordered = dependencyOrder(spec.stages, sources: Set(spec.sources.map(\.name)), known: knownStreams)
        if ordered.count < spec.stages.count {
            let placed = Set(ordered.map(\.name))
            let cycle = spec.stages.filter { !placed.contains($0.name) }
            fail(cycle[0].location, "stages form a cycle: \(cycle.map(\.name).joined(separator: ", ")) read from each other")
        }

        var stages: [(PipelineSpec.Stage, ResolvedPipeline.Component?)] = []
        for stage in ordered {
            switch stage.kind {
            case .plugin(let plugin, let config):
                if stage.from.count > 1 {
                    fail(
                        stage.from[1].location,
                        "a plugin stage reads one stream; to combine streams use a keyed operation ('op')"
                    )
                }
                let resolved = component(
                    stage.name,
                    role: "stage",
                    kind: .transform,
                    plugin: plugin,
                    at: stage.kindLocation,
                    config: config
                )
                stages.append((stage, resolved))
            case .operation(let operation, let arguments):
                guard let reference = stage.functionReference else {
                    stages.append((stage, nil))
                    continue
                }
                switch operation.function {
                case .reduce where !reference.name.contains("."):
                    // A reducer plugin, a state-updater plugin (updateStateByKey only), or a misspelt built-in function.
                    if let plugin = catalog.plugins[reference.name], plugin.kind == .stateUpdater {
                        if operation.name != BuiltinOperation.updateStateByKey.name {
                            fail(reference.location, "plugin '\(reference.name)' is a state-updater plugin: it supplies updateStateByKey only, "
                                + "not \(operation.name) (name a reducer plugin, a built-in function or LIBRARY.FUNCTION here)")
                        } else if arguments.dropZero {
                            fail(reference.location, "drop_zero does not apply with state-updater plugin '\(reference.name)': its state is "
                                + "bytes, not a number (return SLUICE_STATE_REMOVE to drop a key)")
                        } else if let updater = component(
                            stage.name, role: "stage", kind: .stateUpdater, plugin: reference.name, at: reference.location, config: nil
                        ) {
                            stateUpdaterPlugins[stage.name] = updater
                        }
                    } else if let plugin = catalog.plugins[reference.name], plugin.kind == .reducer {
                        let reducer = component(stage.name, role: "stage", kind: .reducer, plugin: reference.name, at: reference.location, config: nil)
                        if arguments.inverse && !plugin.functions.hasInverse {
                            fail(reference.location, "reducer plugin '\(reference.name)' has no reduce_invert, so inverse: true cannot be used")
                        } else if let reducer {
                            reducerPlugins[stage.name] = reducer
                        }
                    } else {
                        let pluginKinds: Set<PluginKind> = operation.name == BuiltinOperation.updateStateByKey.name ? [.reducer, .stateUpdater] : [.reducer]
                        let known = ReduceFunction.allCases.map(\.rawValue)
                            + catalog.plugins.values.filter { pluginKinds.contains($0.kind) }.map(\.name).sorted()
                        fail(reference.location, "unknown function '\(reference.name)'" + didYouMean(reference.name, among: known)
                            + "; expected one of: " + known.joined(separator: ", ") + ", or LIBRARY.FUNCTION")
                    }
                case .reduce:
                    if let function = resolveFunction(reference.name, kind: .reduce, at: reference.location) {
                        let reducer = FunctionReducer(function)
                        if arguments.inverse && !reducer.hasInverse {
                            fail(reference.location, "'\(reference.name)' has no inverse (give it one with 'inverse:' in its manifest), so inverse: true cannot be used")
                        } else {
                            reducers[stage.name] = reducer
                        }
                    }
                case .perValue(let kind):
                    if let function = resolveFunction(reference.name, kind: kind, at: reference.location) { functions[stage.name] = function }
                case .none:
                    break
                }
                stages.append((stage, nil))
            }
        }
        checkSlides(ordered, spec: spec, fail: fail)

        var sinks: [ResolvedPipeline.Component] = []
        for sink in spec.sinks {
            if !knownStreams.contains(sink.from) {
                fail(sink.fromLocation, "no source or stage named '\(sink.from)'" + didYouMean(sink.from, among: streamNames))
            }
            if let resolved = component(
                sink.name,
                role: "sink",
                kind: .sink,
                plugin: sink.plugin,
                at: sink.pluginLocation,
                config: sink.config
            ) {
                sinks.append(resolved)
            }
        }
        guard errors.isEmpty else {
            throw PipelineErrors(errors: errors.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        return ResolvedPipeline(
            spec: spec, sources: sources, stages: stages, sinks: sinks, functions: functions, reducers: reducers, reducerPlugins: reducerPlugins,
            stateUpdaterPlugins: stateUpdaterPlugins
        )
    }
}

/// Converts a YAML configuration block to JSON, typed by the plugin's schema, recording problems with locations.
struct ConfigConverter {
    let schema: PluginSchema
    let plugin: String
    let baseDirectory: String
    var problems: [(SourceLocation, String)] = []
    /// The values given to secret options.
    var secrets: [String] = []

    init(schema: PluginSchema, plugin: String, baseDirectory: String) {
        self.schema = schema
        self.plugin = plugin
        self.baseDirectory = baseDirectory
    }

    mutating func json(_ config: ConfigValue?, at location: SourceLocation) -> String {
        var fields: [String] = []
        var present = Set<String>()
        switch config {
        case nil, .null?:
            break
        case .map(let entries, _)?:
            let known = schema.options.map(\.name)
            for entry in entries {
                guard let option = schema.option(entry.key) else {
                    if schema.closed {
                        problems.append(
                            (
                                entry.keyLocation,
                                "unknown option '\(entry.key)' for plugin '\(plugin)'" + didYouMean(entry.key, among: known)
                                    + (known.isEmpty ? "; it takes no options" : "; its options: " + known.joined(separator: ", "))
                            )
                        )
                    } else {
                        fields.append(jsonQuoted(entry.key) + ":" + untyped(entry.value))
                    }
                    continue
                }
                present.insert(entry.key)
                if let value = typed(entry.value, option) { fields.append(jsonQuoted(entry.key) + ":" + value) }
            }
        case let other?:
            problems.append((other.location, "expected a mapping of option names to values"))
        }
        for option in schema.options where option.required && !present.contains(option.name) {
            problems.append(
                (location, "missing required option '\(option.name)' for plugin '\(plugin)': \(option.description)")
            )
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    private mutating func typed(_ value: ConfigValue, _ option: PluginSchema.Option) -> String? {
        let at = value.location
        switch (option.kind, value) {
        case (_, .null):
            problems.append((at, "option '\(option.name)' has no value"))
            return nil
        case (.string, .scalar(let text, _, _)):
            if option.isSecret { secrets.append(text) }
            if !option.allowed.isEmpty && !option.allowed.contains(text) {
                problems.append(
                    (
                        at,
                        "'\(text)' is not a valid value" + didYouMean(text, among: option.allowed) + "; expected one of: "
                            + option.allowed.joined(separator: ", ")
                    )
                )
                return nil
            }
            if let pattern = option.pattern, !Self.matches(text, pattern) {
                problems.append((at, "'\(text)' is not allowed for option '\(option.name)' (it must match \(pattern)): \(option.description)"))
                return nil
            }
            if option.isPath && !text.hasPrefix("/") && !text.isEmpty {
                let resolved = URL(fileURLWithPath: text, relativeTo: URL(fileURLWithPath: baseDirectory + "/")).standardizedFileURL.path
                let base = URL(fileURLWithPath: baseDirectory).standardizedFileURL.path
                let inside = resolved == base || resolved.hasPrefix(base.hasSuffix("/") ? base : base + "/")
                if option.isOutputPath && !inside {
                    problems.append(
                        (at, "'\(text)' leaves the pipeline file's directory (\(baseDirectory)); '\(option.name)' is written to, so "
                            + "a path outside it must be given absolute (\(resolved))")
                    )
                    return nil
                }
                return jsonQuoted(resolved)
            }
            return jsonQuoted(text)
        case (.integer, .scalar(let text, let quoted, _)):
            guard !quoted, let number = Int64(text.replacingOccurrences(of: "_", with: "")) else {
                problems.append((at, "expected an integer, got '\(text)'"))
                return nil
            }
            return String(number)
        case (.number, .scalar(let text, let quoted, _)):
            guard !quoted, let number = Double(text), number.isFinite else {
                problems.append((at, "expected a number, got '\(text)'"))
                return nil
            }
            return String(number)
        case (.boolean, .scalar(let text, let quoted, _)):
            switch (quoted, text.lowercased()) {
            case (false, "true"), (false, "yes"), (false, "on"): return "true"
            case (false, "false"), (false, "no"), (false, "off"): return "false"
            default:
                problems.append((at, "expected true or false, got '\(text)'"))
                return nil
            }
        case (.array, .list(let items, _)):
            var parts: [String] = []
            for item in items {
                guard case .scalar(let text, _, _) = item else {
                    problems.append((item.location, "expected a string"))
                    continue
                }
                parts.append(jsonQuoted(text))
            }
            return "[" + parts.joined(separator: ",") + "]"
        case (.any, _), (.object, .map):
            return untyped(value)
        default:
            let wanted: String
            switch option.kind {
            case .string: wanted = "a string"
            case .integer: wanted = "an integer"
            case .number: wanted = "a number"
            case .boolean: wanted = "true or false"
            case .array: wanted = "a list"
            case .object: wanted = "a mapping"
            case .any: wanted = "a value"
            }
            problems.append((at, "expected \(wanted) for option '\(option.name)'"))
            return nil
        }
    }

    /// Whether `text` matches the JSON Schema `pattern` (unanchored, as JSON Schema has it). A pattern the engine
    /// cannot compile matches nothing, so the value is refused with the pattern named rather than let through.
    static func matches(_ text: String, _ pattern: String) -> Bool {
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return false }
        return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// JSON for a value the schema does not type: plain scalars that look like numbers or booleans become those.
    private func untyped(_ value: ConfigValue) -> String {
        switch value {
        case .null: return "null"
        case .scalar(let text, let quoted, _):
            if !quoted {
                if Int64(text) != nil { return text }
                if let number = Double(text), number.isFinite { return String(number) }
                if text == "true" || text == "false" { return text }
            }
            return jsonQuoted(text)
        case .list(let items, _): return "[" + items.map(untyped).joined(separator: ",") + "]"
        case .map(let entries, _):
            return "{" + entries.map { jsonQuoted($0.key) + ":" + untyped($0.value) }.joined(separator: ",") + "}"
        }
    }
}

extension PipelineBuilder {
    /// The stages in rounds: first every stage whose inputs are all sources, then every stage whose inputs are all
    /// placed by then, and so on, each round in file order. Stages on a cycle are left out. Linear in stages and
    /// edges (pipelines with thousands of chained stages validate in milliseconds); unknown inputs count as placed,
    /// they are reported separately.
    static func dependencyOrder(
        _ stages: [PipelineSpec.Stage], sources: Set<String>, known: Set<String>
    ) -> [PipelineSpec.Stage] {
        var waitingOn: [Int] = []
        var readers: [String: [Int]] = [:]
        for (index, stage) in stages.enumerated() {
            let inputs = Set(stage.from.map(\.name)).filter { known.contains($0) && !sources.contains($0) }
            waitingOn.append(inputs.count)
            for input in inputs { readers[input, default: []].append(index) }
        }
        var ordered: [PipelineSpec.Stage] = []
        var round = stages.indices.filter { waitingOn[$0] == 0 }
        while !round.isEmpty {
            var next: [Int] = []
            for index in round {
                ordered.append(stages[index])
                for reader in readers[stages[index].name] ?? [] {
                    waitingOn[reader] -= 1
                    if waitingOn[reader] == 0 { next.append(reader) }
                }
            }
            round = next.sorted()
        }
        return ordered
    }

    /// Every stream produces a batch every `slide` batch intervals: 1 for sources and most stages, the slide of a
    /// window. Streams combined by a join, `cogroup`, `union` or a multi-input operation must share it (Spark's
    /// rule), and a window over a windowed stream must be a multiple of its slide.
    static func checkSlides(
        _ stages: [PipelineSpec.Stage],
        spec: PipelineSpec,
        fail: (SourceLocation, String) -> Void
    ) {
        var slides: [String: Int] = [:]
        for source in spec.sources { slides[source.name] = 1 }
        let interval = spec.batchIntervalMilliseconds
        for stage in stages {
            let inputs = stage.from.filter { slides[$0.name] != nil }
            guard let first = inputs.first, let inputSlide = slides[first.name] else { continue }
            if let other = inputs.first(where: { slides[$0.name] != inputSlide }) {
                let what: String
                if case .operation(let operation, _) = stage.kind { what = operation.name } else { what = "an operation over several streams" }
                fail(
                    other.location,
                    "'\(first.name)' produces a batch every \(formatDuration(inputSlide * interval)) but '\(other.name)' every "
                        + "\(formatDuration(slides[other.name]! * interval)); \(what) needs streams with the same interval"
                )
                continue
            }
            var (window, slide) = (0, inputSlide)
            if case .operation(let operation, let arguments) = stage.kind, operation.isWindowed {
                (window, slide) = (arguments.window, arguments.slide)
            }
            if window > 0 && (window % inputSlide != 0 || slide % inputSlide != 0) {
                fail(
                    stage.kindLocation,
                    "window \(formatDuration(window * interval)) / slide \(formatDuration(slide * interval)) must be multiples of "
                        + "\(formatDuration(inputSlide * interval)), the interval of '\(first.name)'"
                )
            }
            slides[stage.name] = slide
        }
    }
}

extension sluice_plugin_v1 {
    /// Whether a reducer descriptor has an inverse.
    var hasInverse: Bool { reduce_invert != nil }
}
