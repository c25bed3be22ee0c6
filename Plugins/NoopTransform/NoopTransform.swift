import SluiceSDK

/// `noop`: passes batches through unchanged. It exists to measure the cost of the plugin boundary
/// (`mode: passthrough` hands the input back without copying; `mode: copy` copies every record, the cheapest
/// transform that produces a new batch).
public final class NoopTransform: TransformPlugin {
    public struct Configuration: Decodable, Sendable {
        var mode: String
    }

    public static let info = PluginInfo(
        name: "noop",
        version: "1.0.0",
        description: "Passes records through unchanged (for measuring the plugin boundary)",
        options: [
            .string(
                "mode",
                description: "passthrough: return the input batch itself; copy: copy every record into a new batch",
                default: "passthrough",
                allowed: ["passthrough", "copy"]
            )
        ],
        concurrent: true
    )

    private let copy: Bool

    public init(configuration: Configuration, context: PluginContext) throws {
        copy = configuration.mode == "copy"
    }

    public func transform(_ input: BatchView, into output: inout BatchBuilder) throws {
        guard copy, input.valueType == .bytes, !input.hasKeys else {
            output.passthrough(input)
            return
        }
        for i in 0..<input.count {
            output.append(input.value(at: i))
            if let t = input.timestamp(at: i) { output.setLastTimestamp(t) }
        }
    }
}
