import SluiceCore
import SluiceLoader
import SluiceSDK

/// `sluice validate`'s last step: every plugin of a resolved pipeline checks its own configuration, so a value its
/// schema cannot judge (a connection string that does not parse, a starting position that is not one) is caught
/// before `run`. The plugins are asked with `SLUICE_HOST_CHECK_ONLY` (ABI 1.2) and start nothing; a plugin built for
/// an older ABI would start for real, so it is skipped and named in `unchecked`.
public enum ConfigurationCheck {
    public struct Outcome: Sendable {
        /// Each refusal, at its plugin's `config` block.
        public var errors: [PipelineError] = []
        /// The instances whose plugins are too old to be asked (ABI before 1.2): their options were checked against
        /// the schema only.
        public var unchecked: [String] = []
    }

    public static func run(_ pipeline: ResolvedPipeline) -> Outcome {
        var outcome = Outcome()
        for component in pipeline.components {
            guard component.plugin.canCheckConfiguration else {
                outcome.unchecked.append("\(component.role) '\(component.name)' (plugin '\(component.plugin.name)', ABI \(component.plugin.abiDescription))")
                continue
            }
            do {
                _ = try PluginInstance(
                    plugin: component.plugin, name: component.name, configJSON: component.configJSON, checkOnly: true,
                    log: { _, _, _ in }
                )
            } catch {
                outcome.errors.append(pipeline.createFailure(component, error).error)
            }
        }
        return outcome
    }
}
