import SluiceCore
import SluiceFunctions

/// Where something was written in a pipeline file.
public struct SourceLocation: Sendable, Equatable {
    public var line: Int
    public var column: Int
    public var keyPath: String
}

/// A plugin's configuration block as written: a YAML value with locations, converted to JSON once the plugin's
/// schema is known.
public indirect enum ConfigValue: Sendable {
    case scalar(String, quoted: Bool, SourceLocation)
    case list([ConfigValue], SourceLocation)
    case map([(key: String, keyLocation: SourceLocation, value: ConfigValue)], SourceLocation)
    case null(SourceLocation)

    public var location: SourceLocation {
        switch self {
        case .scalar(_, _, let l), .list(_, let l), .map(_, let l), .null(let l): return l
        }
    }
}

/// A parsed (syntactically valid) pipeline file. Semantic checks against plugins happen in `PipelineBuilder`.
public struct PipelineSpec: Sendable {
    public struct Source: Sendable {
        public var name: String
        public var location: SourceLocation
        public var plugin: String
        public var pluginLocation: SourceLocation
        public var maxRecordsPerPartition: Int
        public var config: ConfigValue?
    }

    public struct Stage: Sendable {
        public enum Kind: Sendable {
            case plugin(String, config: ConfigValue?)
            /// A built-in operation (`op:`), with the arguments its keys gave.
            case operation(BuiltinOperation, OperationArguments)
        }
        public var name: String
        public var location: SourceLocation
        public var from: [(name: String, location: SourceLocation)]
        public var kind: Kind
        public var kindLocation: SourceLocation
        /// An operation's `function:` when it is not a built-in reduce function: `LIBRARY.FUNCTION` of a function
        /// library, or a reducer plugin's name; the builder resolves it.
        public var functionReference: (name: String, location: SourceLocation)? = nil
    }

    public struct Sink: Sendable {
        public var name: String
        public var location: SourceLocation
        public var from: String
        public var fromLocation: SourceLocation
        public var plugin: String
        public var pluginLocation: SourceLocation
        public var config: ConfigValue?
    }

    /// The pipeline file's path as given.
    public var file: String
    public var name: String
    public var batchIntervalMilliseconds: Int
    /// `checkpoint:`: the checkpoint directory (absolute, or relative to the pipeline file's directory), if any.
    public var checkpointDirectory: String?
    public var sources: [Source]
    public var stages: [Stage]
    public var sinks: [Sink]
    /// Values that `${NAME}` and `${file:PATH}` put into the file: masked in every message, as secrets are.
    public var substitutedValues: [String] = []
    /// `backpressure:` (Spark's PID rate estimator), nil when off.
    public var backpressure: BackpressureConfiguration?
    /// `state_snapshots:` when commits save deltas of the operator state; nil: every commit saves all of it.
    public var stateSnapshots: IncrementalSnapshots? = IncrementalSnapshots()

    /// The default cap on records per source partition per batch.
    public static let defaultMaxRecordsPerPartition = 250_000
}
