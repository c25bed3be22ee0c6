import Foundation
import Hummingbird
import SluiceHost

/// A `POST /batches` body checked and turned into what the server runs: Livy's fields, each mapped to Sluice
/// (`docs/serve.md` has the table). Every refusal is a 400 that says which field and why.
struct BatchRequest: Sendable {
    /// The pipeline: a file the server may read, or the YAML text itself.
    enum Pipeline: Sendable, Equatable {
        case file(String)
        case inline(String)
    }

    var pipeline: Pipeline
    /// The name given, else the pipeline's own `name`.
    var name: String
    /// `sluice run` arguments (only those in `allowedArguments`).
    var arguments: [String]
    /// `conf` entries other than the server's own keys, as `--set KEY=VALUE`.
    var settings: [String]
    var parallelism: Int?
    var memoryLimitBytes: Int64?
    var restartOnFailure: Bool

    /// Livy's request fields. Those Sluice has no use for are accepted when empty or ignorable (`className`, `queue`,
    /// `driverCores`) and refused when they would ask for something it cannot do.
    static let knownFields: Set<String> = [
        "file", "pipeline", "name", "args", "conf", "className", "numExecutors", "executorCores", "driverCores",
        "driverMemory", "executorMemory", "jars", "pyFiles", "files", "archives", "proxyUser", "queue",
    ]

    /// `sluice run` options a submission may pass in `args`, with whether each takes a value. Options that choose
    /// plugins, checkpoints or outputs are the server's to set.
    static let allowedArguments: [String: Bool] = [
        "--batches": true, "--until-idle": false, "--idle-batches": true, "--reset-state": false, "--log-level": true,
        "--shutdown-timeout": true,
    ]

    /// Server keys in `conf`; every other key is a pipeline value (`--set`).
    static let restartKey = "restart"

    /// Parses and checks a body.
    /// - Parameters:
    ///   - allowedDirectories: a `file` must resolve (symbolic links followed) to a path under one of these.
    ///   - environment: what `${NAME}` in the pipeline reads, as the child will.
    static func parse(_ body: [UInt8], allowedDirectories: [URL], environment: [String: String]) throws(ServeError)
        -> BatchRequest
    {
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw ServeError.badRequest("the request body must be a JSON object")
            }
            object = parsed
        } catch let error as ServeError {
            throw error
        } catch {
            throw .badRequest("malformed JSON: \(Self.parserMessage(error))")
        }
        let unknown = object.keys.filter { !knownFields.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw .badRequest("unknown field\(unknown.count == 1 ? "" : "s"): \(unknown.joined(separator: ", "))")
        }
        let fields = Fields(object: object)
        for ignored in ["jars", "pyFiles", "files", "archives"] {
            if let list = try fields.strings(ignored), !list.isEmpty {
                throw .badRequest("'\(ignored)' is not supported: a pipeline names its plugins and files itself")
            }
        }
        if try fields.string("proxyUser") != nil {
            throw .badRequest("'proxyUser' is not supported: every pipeline runs as the server's user")
        }
        _ = try fields.string("className")
        _ = try fields.string("queue")
        _ = try fields.integer("driverCores")

        let arguments = try Self.checkedArguments(try fields.strings("args") ?? [])
        let pipeline: Pipeline
        let text: String
        let fileName: String
        switch (try fields.string("file"), try fields.string("pipeline")) {
        case (let file?, nil):
            let path = try Self.allowedPath(file, allowedDirectories: allowedDirectories)
            guard let data = FileManager.default.contents(atPath: path), let contents = String(data: data, encoding: .utf8)
            else { throw .badRequest("'file': \(file) cannot be read as UTF-8 text") }
            pipeline = .file(path)
            text = contents
            fileName = path
        case (nil, let inline?):
            pipeline = .inline(inline)
            text = inline
            fileName = "pipeline"
        case (nil, nil):
            throw .badRequest("missing field: 'file' (a pipeline file the server may read) or 'pipeline' (its YAML)")
        case (_?, _?):
            throw .badRequest("give 'file' or 'pipeline', not both")
        }

        var settings: [String] = []
        var restartOnFailure = false
        for (key, value) in (try fields.stringMap("conf") ?? [:]).sorted(by: { $0.key < $1.key }) {
            if key == restartKey {
                switch value {
                case "on-failure": restartOnFailure = true
                case "never", "no": restartOnFailure = false
                default: throw .badRequest("'conf.restart' must be on-failure or never, not '\(value)'")
                }
            } else {
                settings.append("\(key)=\(value)")
            }
        }

        let spec: PipelineSpec
        do {
            spec = try PipelineParser.parse(text: text, file: fileName, environment: environment, overrides: settings)
        } catch {
            throw .badRequest("invalid pipeline:\n\(error.description)")
        }

        let executors = try fields.integer("numExecutors")
        let cores = try fields.integer("executorCores")
        var parallelism: Int?
        if executors != nil || cores != nil {
            let product = (executors ?? 1).multipliedReportingOverflow(by: cores ?? 1)
            guard !product.overflow, product.partialValue >= 1 else {
                throw .badRequest("'numExecutors' × 'executorCores' must be at least 1")
            }
            parallelism = product.partialValue
        }
        var memoryLimitBytes: Int64?
        let driver = try fields.memory("driverMemory")
        let executor = try fields.memory("executorMemory")
        if driver != nil || executor != nil {
            // Spark's budget for one application: the driver plus every executor; here one process holds it all.
            let executorsTotal = (executor ?? 0).multipliedReportingOverflow(by: Int64(executors ?? 1))
            let total = (driver ?? 0).addingReportingOverflow(executorsTotal.partialValue)
            guard !executorsTotal.overflow, !total.overflow else { throw .badRequest("the memory asked for is too large") }
            memoryLimitBytes = total.partialValue
        }
        let name = try fields.string("name") ?? spec.name
        return BatchRequest(
            pipeline: pipeline, name: name, arguments: arguments, settings: settings, parallelism: parallelism,
            memoryLimitBytes: memoryLimitBytes, restartOnFailure: restartOnFailure
        )
    }

    /// The message of a JSON parser's error, with its location (Foundation puts both in the debug description).
    private static func parserMessage(_ error: any Error) -> String {
        let nsError = error as NSError
        if let detail = nsError.userInfo[NSDebugDescriptionErrorKey] as? String { return detail }
        if case DecodingError.dataCorrupted(let context) = error {
            return context.underlyingError.map { parserMessage($0) } ?? context.debugDescription
        }
        return "\(error)"
    }

    /// The real path of `file` (a path or a `file://` URL), if it is under an allowed directory.
    static func allowedPath(_ file: String, allowedDirectories: [URL]) throws(ServeError) -> String {
        let path = file.hasPrefix("file://") ? URL(string: file)?.path ?? file : file
        guard path.hasPrefix("/") else { throw .badRequest("'file' must be an absolute path: \(file)") }
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        for directory in allowedDirectories {
            let root = directory.resolvingSymlinksInPath().standardizedFileURL.path
            let prefix = root.hasSuffix("/") ? root : root + "/"
            if real.hasPrefix(prefix) { return real }
        }
        throw ServeError(
            .forbidden,
            "'file': \(file) is not under a directory the server may read (--allow-dir)"
                + (allowedDirectories.isEmpty ? "; none is allowed: submit the pipeline inline" : "")
        )
    }

    /// `args` with only the options the server lets a submission choose.
    static func checkedArguments(_ arguments: [String]) throws(ServeError) -> [String] {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let option = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            guard let takesValue = allowedArguments[option] else {
                let allowed = allowedArguments.keys.sorted().joined(separator: ", ")
                throw .badRequest("'args': \(argument) is not allowed; a submission may pass \(allowed)")
            }
            if takesValue && !argument.contains("=") {
                guard index + 1 < arguments.count else { throw .badRequest("'args': \(argument) needs a value") }
                index += 1
            }
            index += 1
        }
        return arguments
    }

    /// Typed reads of the body's fields, each refusal naming the field.
    private struct Fields {
        var object: [String: Any]

        func string(_ key: String) throws(ServeError) -> String? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            guard let string = value as? String else { throw .badRequest("'\(key)' must be a string") }
            return string
        }

        func integer(_ key: String) throws(ServeError) -> Int? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            guard let number = value as? NSNumber, !(value is Bool), let integer = Int(exactly: number.doubleValue),
                integer >= 1
            else { throw .badRequest("'\(key)' must be a positive integer") }
            return integer
        }

        func strings(_ key: String) throws(ServeError) -> [String]? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            guard let list = value as? [Any], let strings = list as? [String], strings.count == list.count else {
                throw .badRequest("'\(key)' must be a list of strings")
            }
            return strings
        }

        func stringMap(_ key: String) throws(ServeError) -> [String: String]? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            guard let map = value as? [String: Any] else { throw .badRequest("'\(key)' must be an object of strings") }
            var result: [String: String] = [:]
            for (name, entry) in map {
                guard let string = entry as? String else { throw .badRequest("'\(key).\(name)' must be a string") }
                result[name] = string
            }
            return result
        }

        func memory(_ key: String) throws(ServeError) -> Int64? {
            guard let text = try string(key) else { return nil }
            guard let bytes = MemorySize.bytes(text) else {
                throw .badRequest("'\(key)' must be a size such as 512m or 2g, not '\(text)'")
            }
            return bytes
        }
    }
}
