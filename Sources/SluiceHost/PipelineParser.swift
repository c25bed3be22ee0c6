import Foundation
import SluiceCore
import SluiceFunctions
import SluiceSDK
import Yams

/// Reads a pipeline file (YAML) into a `PipelineSpec`, collecting every problem with its file, line and key path.
///
/// ```yaml
/// name: wordcount
/// batch_interval: 1s
/// sources:
///   lines: {plugin: file-watch, config: {directory: ./inbox, start: earliest}}
/// stages:
///   words: {from: lines, plugin: split}
///   counts: {from: words, op: countByValue}
/// sinks:
///   print: {from: counts, plugin: console}
/// ```
public struct PipelineParser {
    public let file: String
    private var errors: [PipelineError] = []

    static let topKeys = ["name", "batch_interval", "checkpoint", "backpressure", "state_snapshots", "sources", "stages", "sinks"]
    static let stateSnapshotKeys = ["incremental", "max_deltas", "max_delta_fraction"]
    static let backpressureKeys = ["enabled", "initial_rate", "min_rate", "pid"]
    static let pidKeys = ["proportional", "integral", "derivative"]
    static let sourceKeys = ["plugin", "max_records_per_partition", "config"]
    /// `from` and `op`/`plugin`, then every key some built-in operation takes (the operation table declares which).
    static let stageKeys = ["from", "plugin", "op", "config"] + OperationKey.allCases.map(\.rawValue)
    /// Every value `${...}` took from the environment or a file: secrets, as far as messages are concerned.
    private var substitutedValues: [String] = []
    /// The batch interval, once parsed (windows must be multiples of it); nil when it is missing or invalid.
    private var interval: Int?
    static let sinkKeys = ["from", "plugin", "config"]

    /// Parses the file at `path`.
    /// - Parameters:
    ///   - environment: what `${NAME}` reads (the CLI passes the process environment); `${NAME}` without a default
    ///     is an error when NAME is missing here.
    ///   - overrides: `KEY.PATH=VALUE` settings applied before the file is read (`--set`).
    public static func parse(path: String, environment: [String: String] = [:], overrides: [String] = [])
        throws(PipelineErrors) -> PipelineSpec
    {
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? Int, size > YAMLExpansionLimit.maximumFileBytes
        {
            throw PipelineErrors(errors: [
                PipelineError(
                    file: path, line: 1, column: 1, keyPath: "",
                    message: "pipeline file is \(size) bytes; the largest read is \(YAMLExpansionLimit.maximumFileBytes)"
                )
            ])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw PipelineErrors(errors: [
                PipelineError(file: path, line: 1, column: 1, keyPath: "", message: "pipeline file \(reason)")
            ])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PipelineErrors(errors: [
                PipelineError(file: path, line: 1, column: 1, keyPath: "", message: "pipeline file is not UTF-8 text")
            ])
        }
        return try parse(text: text, file: path, environment: environment, overrides: overrides)
    }

    /// Parses pipeline text; `file` names it in errors and anchors relative `${file:PATH}` references.
    public static func parse(
        text: String, file: String, environment: [String: String] = [:], overrides: [String] = []
    ) throws(PipelineErrors) -> PipelineSpec {
        var parser = PipelineParser(file: file)
        let spec = parser.run(text, environment: environment, overrides: overrides)
        if let spec, parser.errors.isEmpty { return spec }
        // A value from the environment or a file may be what an error quotes; it is shown as ***.
        throw PipelineErrors(errors: parser.errors.map { error in
            var error = error
            error.message = SecretMask.mask(error.message, hiding: parser.substitutedValues)
            return error
        })
    }

    private init(file: String) { self.file = file }

    // MARK: Errors

    private mutating func fail(_ node: Node?, _ keyPath: String, _ message: String) {
        let mark = node?.mark
        errors.append(
            PipelineError(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, keyPath: keyPath, message: message)
        )
    }

    private func location(_ node: Node, _ keyPath: String) -> SourceLocation {
        SourceLocation(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, keyPath: keyPath)
    }

    // MARK: Parsing

    private mutating func run(_ text: String, environment: [String: String], overrides: [String]) -> PipelineSpec? {
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            errors.append(yamlError(error))
            return nil
        } catch {
            errors.append(PipelineError(file: file, line: 1, column: 1, keyPath: "", message: "invalid YAML: \(error)"))
            return nil
        }
        guard var root = composed, case .mapping = root else {
            fail(composed, "", "a pipeline file must be a mapping with the keys name, batch_interval, sources, stages, sinks")
            return nil
        }
        if YAMLExpansionLimit.exceeded(by: root) {
            fail(
                root, "",
                "the file expands to more than \(YAMLExpansionLimit.maximumNodes) YAML nodes (an alias, *name, counts "
                    + "every node of what it names each time it is used)"
            )
            return nil
        }
        // Values from outside the file go in first, so that everything below checks them as if written there.
        var substitution = VariableSubstitution(
            environment: environment, baseDirectory: URL(fileURLWithPath: file).deletingLastPathComponent().path, file: file
        )
        root = substitution.apply(root)
        errors += substitution.errors
        substitutedValues = substitution.substituted
        var settings = PipelineOverrides(file: file)
        root = settings.apply(overrides, to: root)
        errors += settings.errors
        guard case .mapping(let top) = root else { return nil }
        let fields = entries(top, keyPath: "", allowed: Self.topKeys)

        var name = ""
        if let node = fields["name"] {
            name = string(node.value, "name") ?? ""
            if !name.isEmpty && !isValidName(name) {
                fail(node.value, "name", "'\(name)' is not a valid pipeline name: use letters, digits, '-', '_' and '.'")
            }
        } else {
            fail(root, "", "missing required key 'name'")
        }

        if let node = fields["batch_interval"] {
            interval = duration(node.value, "batch_interval", atMost: PipelineLimits.batchIntervalMilliseconds)
        } else {
            fail(root, "", "missing required key 'batch_interval' (for example: batch_interval: 1s)")
        }

        var checkpoint: String?
        if let node = fields["checkpoint"], let path = string(node.value, "checkpoint") {
            let base = URL(fileURLWithPath: file).deletingLastPathComponent()
            checkpoint = path.hasPrefix("/") ? path : base.appendingPathComponent(path).standardizedFileURL.path
        }

        let backpressure = fields["backpressure"].flatMap { parseBackpressure($0.value) }
        let stateSnapshots = fields["state_snapshots"].map { parseStateSnapshots($0.value) } ?? IncrementalSnapshots()

        var sources: [PipelineSpec.Source] = []
        if let node = fields["sources"] {
            for (key, value) in namedMapping(node.value, "sources", required: true) {
                if let source = parseSource(key, value) { sources.append(source) }
            }
        } else {
            fail(root, "", "missing required key 'sources': a pipeline needs at least one source")
        }

        var stages: [PipelineSpec.Stage] = []
        if let node = fields["stages"] {
            for (key, value) in namedMapping(node.value, "stages", required: false) {
                if let stage = parseStage(key, value) { stages.append(stage) }
            }
        }

        var sinks: [PipelineSpec.Sink] = []
        if let node = fields["sinks"] {
            for (key, value) in namedMapping(node.value, "sinks", required: true) {
                if let sink = parseSink(key, value) { sinks.append(sink) }
            }
        } else {
            fail(root, "", "missing required key 'sinks': a pipeline needs at least one sink")
        }

        checkNames(sources: sources, stages: stages, sinks: sinks)
        return PipelineSpec(
            file: file,
            name: name,
            batchIntervalMilliseconds: interval ?? 1000,
            checkpointDirectory: checkpoint,
            sources: sources,
            stages: stages,
            sinks: sinks,
            substitutedValues: substitutedValues,
            backpressure: backpressure,
            stateSnapshots: stateSnapshots
        )
    }

    /// `state_snapshots: {incremental, max_deltas, max_delta_fraction}`: deltas between whole snapshots
    /// (`IncrementalSnapshots`, on by default); nil when `incremental: false`.
    private mutating func parseStateSnapshots(_ node: Node) -> IncrementalSnapshots? {
        var policy = IncrementalSnapshots()
        guard case .mapping(let mapping) = node else {
            fail(node, "state_snapshots", "must be a mapping with the keys " + Self.stateSnapshotKeys.joined(separator: ", "))
            return policy
        }
        let fields = entries(mapping, keyPath: "state_snapshots", allowed: Self.stateSnapshotKeys)
        if let field = fields["max_deltas"] {
            policy.maxDeltas = positiveInteger(field.value, "state_snapshots.max_deltas", atMost: 100_000) ?? policy.maxDeltas
        }
        if let field = fields["max_delta_fraction"] {
            policy.maxDeltaFraction = number(field.value, "state_snapshots.max_delta_fraction", positive: true) ?? policy.maxDeltaFraction
        }
        if let field = fields["incremental"], boolean(field.value, "state_snapshots.incremental") == false { return nil }
        return policy
    }

    /// `backpressure: {enabled, initial_rate, min_rate, pid: {proportional, integral, derivative}}`, Spark's
    /// `spark.streaming.backpressure.*` with its defaults; nil when disabled (or invalid, with the errors reported).
    private mutating func parseBackpressure(_ node: Node) -> BackpressureConfiguration? {
        guard case .mapping(let mapping) = node else {
            fail(node, "backpressure", "must be a mapping with the keys " + Self.backpressureKeys.joined(separator: ", "))
            return nil
        }
        let fields = entries(mapping, keyPath: "backpressure", allowed: Self.backpressureKeys)
        var configuration = BackpressureConfiguration()
        var enabled = true
        if let field = fields["enabled"] { enabled = boolean(field.value, "backpressure.enabled") ?? false }
        if let field = fields["initial_rate"] { configuration.initialRate = number(field.value, "backpressure.initial_rate", positive: true) }
        if let field = fields["min_rate"] {
            configuration.minRate = number(field.value, "backpressure.min_rate", positive: true) ?? configuration.minRate
        }
        if let field = fields["pid"] {
            guard case .mapping(let pid) = field.value else {
                fail(field.value, "backpressure.pid", "must be a mapping with the keys " + Self.pidKeys.joined(separator: ", "))
                return nil
            }
            let gains = entries(pid, keyPath: "backpressure.pid", allowed: Self.pidKeys)
            if let gain = gains["proportional"] { configuration.proportional = number(gain.value, "backpressure.pid.proportional") ?? 1 }
            if let gain = gains["integral"] { configuration.integral = number(gain.value, "backpressure.pid.integral") ?? 0.2 }
            if let gain = gains["derivative"] { configuration.derivative = number(gain.value, "backpressure.pid.derivative") ?? 0 }
        }
        return enabled ? configuration : nil
    }

    /// A finite number, at least 0 (above 0 when `positive`).
    private mutating func number(_ node: Node, _ keyPath: String, positive: Bool = false) -> Double? {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string.replacingOccurrences(of: "_", with: "")), value.isFinite,
            positive ? value > 0 : value >= 0
        else {
            fail(node, keyPath, "expected a \(positive ? "positive" : "non-negative") number, got '\(node.scalar?.string ?? "a collection")'")
            return nil
        }
        return value
    }

    private func yamlError(_ error: YamlError) -> PipelineError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return PipelineError(
                file: file,
                line: mark.line,
                column: mark.column,
                keyPath: "",
                message: "invalid YAML: \(problem)"
            )
        case .reader(let problem, let offset, let value, let yaml):
            // The reader reports a character offset, not a line: count the lines before it.
            var line = 1
            var column = 1
            if let offset {
                for character in yaml.prefix(offset) {
                    if character.isNewline { line += 1; column = 1 } else { column += 1 }
                }
            }
            let code = value >= 0 ? String(format: " (character U+%04X)", value) : ""
            return PipelineError(file: file, line: line, column: column, keyPath: "", message: "invalid YAML: \(problem)\(code)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return PipelineError(
                file: file,
                line: context.mark.line,
                column: context.mark.column,
                keyPath: "",
                message: "key \(names) appears more than once in the same mapping (first here)"
            )
        default:
            return PipelineError(file: file, line: 1, column: 1, keyPath: "", message: "invalid YAML: \(error)")
        }
    }

    /// The entries of a mapping by key, refusing unknown and repeated keys.
    private mutating func entries(_ mapping: Node.Mapping, keyPath: String, allowed: [String]) -> [String: (
        key: Node, value: Node
    )] {
        var result: [String: (key: Node, value: Node)] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                fail(keyNode, keyPath, "keys must be plain strings")
                continue
            }
            let path = join(keyPath, key)
            if result[key] != nil {
                fail(keyNode, path, "key '\(key)' appears twice")
                continue
            }
            guard allowed.contains(key) else {
                fail(keyNode, path, "unknown key '\(key)'" + didYouMean(key, among: allowed) + expected(allowed))
                continue
            }
            result[key] = (keyNode, value)
        }
        return result
    }

    private func expected(_ allowed: [String]) -> String {
        "; expected one of: " + allowed.joined(separator: ", ")
    }

    /// A mapping of named items (sources, stages, sinks), in file order.
    private mutating func namedMapping(_ node: Node, _ keyPath: String, required: Bool) -> [(String, Node)] {
        if case .scalar(let scalar) = node, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null",
            !required
        {
            return []
        }
        guard case .mapping(let mapping) = node else {
            fail(node, keyPath, "must be a mapping of names to definitions")
            return []
        }
        if mapping.count == 0 && required { fail(node, keyPath, "must define at least one entry") }
        var seen = Set<String>()
        var result: [(String, Node)] = []
        for (keyNode, value) in mapping {
            guard let name = keyNode.scalar?.string else {
                fail(keyNode, keyPath, "names must be plain strings")
                continue
            }
            guard seen.insert(name).inserted else {
                fail(keyNode, join(keyPath, name), "'\(name)' is defined twice")
                continue
            }
            if !isValidName(name) {
                fail(keyNode, join(keyPath, name), "'\(name)' is not a valid name: use letters, digits, '-', '_' and '.'")
                continue
            }
            result.append((name, value))
        }
        return result
    }

    private mutating func parseSource(_ name: String, _ node: Node) -> PipelineSpec.Source? {
        let path = "sources.\(name)"
        guard case .mapping(let mapping) = node else {
            fail(node, path, "must be a mapping with the keys " + Self.sourceKeys.joined(separator: ", "))
            return nil
        }
        let fields = entries(mapping, keyPath: path, allowed: Self.sourceKeys)
        guard let pluginNode = fields["plugin"] else {
            fail(node, path, "missing required key 'plugin' (the source plugin to use, e.g. file-watch)")
            return nil
        }
        guard let plugin = string(pluginNode.value, path + ".plugin") else { return nil }
        var maxRecords = PipelineSpec.defaultMaxRecordsPerPartition
        if let node = fields["max_records_per_partition"] {
            maxRecords = positiveInteger(node.value, path + ".max_records_per_partition", atMost: PipelineLimits.recordsPerPartition) ?? maxRecords
        }
        return PipelineSpec.Source(
            name: name,
            location: location(node, path),
            plugin: plugin,
            pluginLocation: location(pluginNode.value, path + ".plugin"),
            maxRecordsPerPartition: maxRecords,
            config: fields["config"].map { configValue($0.value, path + ".config") }
        )
    }

    private mutating func parseStage(_ name: String, _ node: Node) -> PipelineSpec.Stage? {
        let path = "stages.\(name)"
        guard case .mapping(let mapping) = node else {
            fail(node, path, "must be a mapping with the keys " + Self.stageKeys.joined(separator: ", "))
            return nil
        }
        let fields = entries(mapping, keyPath: path, allowed: Self.stageKeys)
        var from: [(String, SourceLocation)] = []
        if let node = fields["from"] {
            from = streamList(node.value, path + ".from")
        } else {
            fail(node, path, "missing required key 'from' (the stream this stage reads)")
        }
        let kind: PipelineSpec.Stage.Kind
        var functionReference: (name: String, location: SourceLocation)?
        let kindLocation: SourceLocation
        switch (fields["plugin"], fields["op"]) {
        case (let plugin?, nil):
            for key in OperationKey.allCases {
                if let field = fields[key.rawValue] {
                    fail(field.key, path + "." + key.rawValue, "'\(key.rawValue)' applies only to built-in operations ('op'), not to plugin stages")
                }
            }
            guard let pluginName = string(plugin.value, path + ".plugin") else { return nil }
            kind = .plugin(pluginName, config: fields["config"].map { configValue($0.value, path + ".config") })
            kindLocation = location(plugin.value, path + ".plugin")
        case (nil, let op?):
            if let config = fields["config"] {
                fail(config.key, path + ".config", "'config' applies only to plugin stages; built-in operations have none")
            }
            guard let opName = string(op.value, path + ".op") else { return nil }
            kindLocation = location(op.value, path + ".op")
            guard let operation = BuiltinOperation.named(opName) else {
                let known = BuiltinOperation.all.map(\.name)
                fail(op.value, path + ".op", "unknown operation '\(opName)'" + didYouMean(opName, among: known) + expected(known))
                return nil
            }
            guard let built = arguments(of: operation, fields, node, path, inputs: from.count) else { return nil }
            kind = .operation(operation, built.arguments)
            functionReference = built.reference
        case (.some(let plugin), .some):
            fail(plugin.key, path, "a stage has either 'plugin' or 'op', not both")
            return nil
        case (nil, nil):
            fail(node, path, "missing 'plugin' (a transform plugin) or 'op' (a built-in operation such as countByValue)")
            return nil
        }
        return PipelineSpec.Stage(
            name: name,
            location: location(node, path),
            from: from,
            kind: kind,
            kindLocation: kindLocation,
            functionReference: functionReference
        )
    }

    /// The arguments of an `op:` stage from its keys, checked against the operation's declaration: the keys it takes
    /// and requires, the streams it reads, windows and timeouts that are multiples of the batch interval, an inverse
    /// only for a function that has one. A `function:` that is not a built-in reduce function is returned as a
    /// reference for the builder to resolve.
    private mutating func arguments(
        of operation: BuiltinOperation,
        _ fields: [String: (key: Node, value: Node)],
        _ node: Node,
        _ path: String,
        inputs: Int
    ) -> (arguments: OperationArguments, reference: (String, SourceLocation)?)? {
        let name = operation.name
        var ok = true
        for key in OperationKey.allCases where !operation.keys.contains(key) {
            if let field = fields[key.rawValue] {
                fail(
                    field.key, path + "." + key.rawValue,
                    "'\(key.rawValue)' does not apply to \(name); it applies only to \(BuiltinOperation.takers(of: key))"
                )
                ok = false
            }
        }
        for key in OperationKey.allCases where operation.required.contains(key) && fields[key.rawValue] == nil {
            fail(node, path, "missing required key '\(key.rawValue)' (\(key.meaning(in: operation)))")
            ok = false
        }
        if !operation.inputs.accepts(inputs), let from = fields["from"] {
            fail(from.value, path + ".from", "\(name) reads \(operation.inputs.phrase), got \(inputs)")
            ok = false
        }

        var arguments = OperationArguments()
        var reference: (String, SourceLocation)?
        func value<T>(_ key: OperationKey, _ read: (inout Self, Node, String) -> T?) -> T? {
            guard operation.keys.contains(key), let field = fields[key.rawValue] else { return nil }
            let parsed = read(&self, field.value, path + "." + key.rawValue)
            if parsed == nil { ok = false }
            return parsed
        }
        arguments.partitions = value(.partitions) { $0.positiveInteger($1, $2, atMost: PipelineLimits.partitions) }
        if let function = value(.function, { $0.string($1, $2) }) {
            let at = location(fields["function"]!.value, path + ".function")
            switch operation.function {
            case .reduce:
                arguments.function = ReduceFunction(rawValue: function)
                // A library's reduce function (LIBRARY.FUNCTION) or a reducer plugin: the builder resolves it.
                if arguments.function == nil { reference = (function, at) }
            case .perValue:
                if function.contains(".") {
                    reference = (function, at)
                } else {
                    fail(fields["function"]!.value, path + ".function", "'\(function)' is not LIBRARY.FUNCTION (a function of a function library)")
                    ok = false
                }
            case .none:
                break
            }
        }
        if let window = value(.window, { $0.batches($1, $2) }) { arguments.window = window }
        if let slide = value(.slide, { $0.batches($1, $2) }) { arguments.slide = slide }
        if let inverse = value(.inverse, { $0.boolean($1, $2) }) {
            arguments.inverse = inverse
            let effective = arguments.function ?? (operation.function == .reduce ? .sum : .count)
            if inverse && !effective.hasInverse && reference == nil {
                let invertible = ReduceFunction.allCases.filter(\.hasInverse).map(\.rawValue).joined(separator: ", ")
                fail(fields["inverse"]!.value, path + ".inverse", "\(effective.rawValue) has no inverse; inverse: true works with \(invertible)")
                ok = false
            }
        }
        if let dropZero = value(.dropZero, { $0.boolean($1, $2) }) { arguments.dropZero = dropZero }
        if let timeout = value(.timeout, { $0.batches($1, $2, atMost: PipelineLimits.timeoutBatches) }) { arguments.timeout = timeout }
        return ok ? (arguments, reference) : nil
    }

    /// A window length, slide or timeout: a duration that is a whole number of batch intervals, as a number of
    /// batches, at most `limit` of them.
    private mutating func batches(_ node: Node, _ keyPath: String, atMost limit: Int = PipelineLimits.windowBatches) -> Int? {
        guard let milliseconds = duration(node, keyPath, atMost: PipelineLimits.durationMilliseconds) else { return nil }
        guard let interval else { return 1 }  // batch_interval itself is reported
        guard milliseconds % interval == 0 else {
            fail(node, keyPath, "\(formatDuration(milliseconds)) is not a multiple of batch_interval (\(formatDuration(interval)))")
            return nil
        }
        guard milliseconds / interval <= limit else {
            fail(
                node, keyPath,
                "\(formatDuration(milliseconds)) is \(milliseconds / interval) batch intervals; at most \(limit) are allowed "
                    + "(use a longer batch_interval)"
            )
            return nil
        }
        return milliseconds / interval
    }

    private mutating func boolean(_ node: Node, _ keyPath: String) -> Bool? {
        switch node.scalar?.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            fail(node, keyPath, "expected true or false, got '\(node.scalar?.string ?? "a collection")'")
            return nil
        }
    }

    private mutating func parseSink(_ name: String, _ node: Node) -> PipelineSpec.Sink? {
        let path = "sinks.\(name)"
        guard case .mapping(let mapping) = node else {
            fail(node, path, "must be a mapping with the keys " + Self.sinkKeys.joined(separator: ", "))
            return nil
        }
        let fields = entries(mapping, keyPath: path, allowed: Self.sinkKeys)
        guard let fromNode = fields["from"] else {
            fail(node, path, "missing required key 'from' (the stream this sink writes)")
            return nil
        }
        guard let pluginNode = fields["plugin"] else {
            fail(node, path, "missing required key 'plugin' (the sink plugin to use, e.g. console)")
            return nil
        }
        guard let from = string(fromNode.value, path + ".from"), let plugin = string(pluginNode.value, path + ".plugin")
        else { return nil }
        return PipelineSpec.Sink(
            name: name,
            location: location(node, path),
            from: from,
            fromLocation: location(fromNode.value, path + ".from"),
            plugin: plugin,
            pluginLocation: location(pluginNode.value, path + ".plugin"),
            config: fields["config"].map { configValue($0.value, path + ".config") }
        )
    }

    /// Names are unique across sources and stages (they name streams); sinks have their own names.
    private mutating func checkNames(
        sources: [PipelineSpec.Source],
        stages: [PipelineSpec.Stage],
        sinks: [PipelineSpec.Sink]
    ) {
        var streams: [String: SourceLocation] = [:]
        for source in sources { streams[source.name] = source.location }
        for stage in stages {
            if let first = streams[stage.name] {
                errors.append(
                    PipelineError(
                        file: file,
                        line: stage.location.line,
                        column: stage.location.column,
                        keyPath: stage.location.keyPath,
                        message: "'\(stage.name)' is already the name of a source (line \(first.line)); "
                            + "stream names must be unique"
                    )
                )
            }
            streams[stage.name] = stage.location
        }
    }

    // MARK: Scalars

    private mutating func string(_ node: Node, _ keyPath: String) -> String? {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            fail(node, keyPath, "expected a non-empty string")
            return nil
        }
        return scalar.string
    }

    private mutating func streamList(_ node: Node, _ keyPath: String) -> [(String, SourceLocation)] {
        switch node {
        case .scalar:
            if let name = string(node, keyPath) { return [(name, location(node, keyPath))] }
            return []
        case .sequence(let sequence) where sequence.count > 0:
            var result: [(String, SourceLocation)] = []
            for (index, item) in sequence.enumerated() {
                let path = "\(keyPath)[\(index)]"
                if let name = string(item, path) { result.append((name, location(item, path))) }
            }
            return result
        default:
            fail(node, keyPath, "expected a stream name or a list of stream names")
            return []
        }
    }

    private mutating func positiveInteger(_ node: Node, _ keyPath: String, atMost limit: Int) -> Int? {
        let digits = node.scalar?.string.replacingOccurrences(of: "_", with: "") ?? ""
        guard case .scalar = node, !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits.contains(where: { $0 != "0" })
        else {
            fail(node, keyPath, "expected a positive integer, got '\(node.scalar?.string ?? "a collection")'")
            return nil
        }
        // Compared as digits, so a number too large for Int is reported as too large rather than as not a number.
        guard let value = Int(digits), value <= limit else {
            fail(node, keyPath, "\(digits) is more than the largest value allowed here, \(limit)")
            return nil
        }
        return value
    }

    /// `250ms`, `1s`, `1.5s`, `2m`: milliseconds, at most `limit`.
    private mutating func duration(_ node: Node, _ keyPath: String, atMost limit: Int) -> Int? {
        guard case .scalar(let scalar) = node else {
            fail(node, keyPath, "expected a duration such as 500ms, 1s or 2m")
            return nil
        }
        guard let milliseconds = parseDuration(scalar.string) else {
            let hint = Int(scalar.string) != nil ? " (add a unit: \(scalar.string)ms or \(scalar.string)s)" : ""
            fail(node, keyPath, "'\(scalar.string)' is not a duration such as 500ms, 1s or 2m\(hint)")
            return nil
        }
        guard milliseconds >= 1 else {
            fail(node, keyPath, "must be at least 1ms")
            return nil
        }
        guard milliseconds <= limit else {
            fail(node, keyPath, "'\(scalar.string)' is longer than the longest allowed here, \(formatDuration(limit))")
            return nil
        }
        return milliseconds
    }

    private func configValue(_ node: Node, _ keyPath: String) -> ConfigValue {
        let here = location(node, keyPath)
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain && (scalar.string == "~" || scalar.string == "null" || scalar.string.isEmpty) {
                return .null(here)
            }
            return .scalar(scalar.string, quoted: scalar.style != .plain, here)
        case .sequence(let sequence):
            return .list(
                sequence.enumerated().map { configValue($0.element, "\(keyPath)[\($0.offset)]") },
                here
            )
        case .mapping(let mapping):
            return .map(
                mapping.map { key, value in
                    let name = key.scalar?.string ?? "?"
                    return (name, location(key, join(keyPath, name)), configValue(value, join(keyPath, name)))
                },
                here
            )
        case .alias:
            return .null(here)
        }
    }

    private func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}

/// Parses `250ms`, `1s`, `1.5s`, `2m`, `1h` into milliseconds.
public func parseDuration(_ text: String) -> Int? {
    let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    for (unit, scale) in units where trimmed.hasSuffix(unit) {
        let number = trimmed.dropLast(unit.count).trimmingCharacters(in: .whitespaces)
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        // Past Int's range the conversion would trap; such a duration is "too long", which callers report.
        return Int(exactly: min((value * scale).rounded(), 9.0e18))
    }
    return nil
}

func isValidName(_ name: String) -> Bool {
    !name.isEmpty
        && name.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
}

/// Milliseconds in the largest unit that writes them whole: `1500ms`, `2s`, `3m`, `1h`.
public func formatDuration(_ milliseconds: Int) -> String {
    for (unit, scale) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] where milliseconds % scale == 0 && milliseconds > 0 {
        return "\(milliseconds / scale)\(unit)"
    }
    return "\(milliseconds)ms"
}
