/// A problem in a pipeline file, located by file, line, column and key path.
///
/// Printed as `FILE:LINE:COLUMN: KEY.PATH: MESSAGE`, the form editors and terminals turn into links.
public struct PipelineError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int
    public var column: Int
    /// Dotted path of the key, e.g. `sources.lines.config.directory`; empty for the whole file.
    public var keyPath: String
    public var message: String

    public init(file: String, line: Int, column: Int, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        let location = "\(file):\(line):\(column)"
        return keyPath.isEmpty ? "\(location): error: \(message)" : "\(location): error: \(keyPath): \(message)"
    }
}

/// All the problems found in one pipeline file.
public struct PipelineErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [PipelineError]
    /// The pipeline is valid but a plugin could not start (a service it needs is unreachable): the operator should
    /// retry or fix the environment, not the file. `sluice run` exits 1 for these and 2 for the others.
    public var isStartFailure = false
    public init(errors: [PipelineError], isStartFailure: Bool = false) {
        self.errors = errors
        self.isStartFailure = isStartFailure
    }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
