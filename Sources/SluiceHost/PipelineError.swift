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
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
