import Foundation
import Logging
import SluiceSDK

/// The `LogHandler` `sluice run` bootstraps: every record below `logLevel` is dropped, every secret of the pipeline is
/// masked in the message and the metadata (so neither format ever carries one), and the rendered line goes to
/// `write` — standard error, through the progress reporter so that a live progress line is cleared first.
public struct SluiceLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: LogFormat
    private let secrets: [String]
    private let write: @Sendable (String) -> Void

    public init(
        label: String, format: LogFormat, level: Logger.Level, secrets: [String] = [], write: @escaping @Sendable (String) -> Void
    ) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.secrets = secrets
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        if let error = event.error { all["error"] = .string("\(error)") }
        let record = LogRecord(
            timestamp: Date(), level: event.level, component: label, message: mask(event.message.description),
            metadata: all.mapValues(mask)
        )
        write(format.render(record))
    }

    /// A plugin may quote its configuration in what it says; anything shaped like a credential assignment loses its
    /// value too, whoever quoted it.
    private func mask(_ text: String) -> String { SecretMask.mask(text, hiding: secrets) }

    private func mask(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let text): .string(mask(text))
        case .stringConvertible(let convertible):
            convertible is any BinaryInteger || convertible is Double ? value : .string(mask(convertible.description))
        case .array(let items): .array(items.map(mask))
        case .dictionary(let entries): .dictionary(entries.mapValues(mask))
        }
    }
}
