import SluiceSDK

// String.components(separatedBy:); FoundationEssentials where it exists (Linux), so the plugin does not load all of
// Foundation.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `template-reverse`: reverses the order of the words in each record ("a b c" becomes "c b a").
///
/// A complete transform plugin: a configuration with defaults, a self-description, the transform itself, and the
/// one exported entry symbol.
public final class ReverseWords: TransformPlugin {
    /// Decoded from the pipeline file's `config:` block; options not given take the defaults declared below.
    public struct Configuration: Decodable, Sendable {
        var separator: String
    }

    public static let info = PluginInfo(
        name: "template-reverse",
        version: "0.1.0",
        description: "Reverses the order of the words of each record (the plugin template)",
        options: [
            .string("separator", description: "The string between words", default: " ")
        ],
        concurrent: true  // no mutable state: the host may call transform from several threads
    )

    private let separator: String

    public init(configuration: Configuration, context: PluginContext) throws {
        guard !configuration.separator.isEmpty else {
            throw PluginError("configuration key 'separator': must not be empty")
        }
        separator = configuration.separator
    }

    public func transform(_ input: BatchView, into output: inout BatchBuilder) throws {
        for i in 0..<input.count {
            let words = input.valueString(at: i).components(separatedBy: separator)
            output.append(words.reversed().joined(separator: separator))
            if let timestamp = input.timestamp(at: i) { output.setLastTimestamp(timestamp) }
        }
    }
}

/// The one symbol the host looks for.
@c(sluice_plugin_entry_v1)
public func sluicePluginEntry(_ hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
    PluginExport.descriptor(for: ReverseWords.self, hostABI: hostABI)
}
