import Foundation
import Logging

/// How `SluiceLogHandler` writes a record: `text` for people, `json` (one object per line) for log shippers.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json

    /// One line (with its newline) for `record`.
    public func render(_ record: LogRecord) -> String {
        switch self {
        case .text: TextLogLine.render(record) + "\n"
        case .json: JSONLogLine.render(record) + "\n"
        }
    }
}

/// One log message with what the handler knows about it, its secrets already masked.
public struct LogRecord: Sendable {
    public var timestamp: Date
    public var level: Logger.Level
    /// The logger's label: `host`, `scheduler` or `plugin`.
    public var component: String
    public var message: String
    /// Includes `pipeline`, and for plugin messages `instance` and `plugin`.
    public var metadata: Logger.Metadata

    public init(timestamp: Date, level: Logger.Level, component: String, message: String, metadata: Logger.Metadata) {
        self.timestamp = timestamp
        self.level = level
        self.component = component
        self.message = message
        self.metadata = metadata
    }
}
