import Logging

/// The text form of a record, for terminals: the timestamp, then what `sluice run` printed before logs had a format —
/// `[level] instance: message` for a plugin instance's message, `sluice: message` for the host's (with `warning: ` or
/// `error: ` before the message at those levels). Scripts and tests that look for those phrases keep working.
enum TextLogLine {
    static func render(_ record: LogRecord) -> String {
        let time = LogTimestamp.format(record.timestamp)
        if let instance = record.metadata["instance"] {
            return "\(time) [\(record.level)] \(instance): \(record.message)"
        }
        let severity: String
        switch record.level {
        case .trace, .debug, .info, .notice: severity = record.level <= .debug ? "\(record.level): " : ""
        case .warning: severity = "warning: "
        case .error, .critical: severity = "error: "
        }
        return "\(time) sluice: \(severity)\(record.message)"
    }
}
