/// Calls into a pipeline's components that returned an error, and sink retries, during one batch (and its planning
/// and acknowledgement). A batch that completes may have some: a sink's RETRY that worked the second time.
public struct BatchIncidents: Sendable, Equatable {
    /// A component and the call into it, both bounded: the node's name and one of the ABI's calls.
    public struct Call: Hashable, Sendable {
        public var component: String
        /// `partitions`, `available`, `read` or `commit` (a source), `transform`, `reduce` (a keyed stage's
        /// reducer), `begin`, `write` or `commit` (a sink).
        public var call: String
        public init(component: String, call: String) {
            self.component = component
            self.call = call
        }
    }

    /// How many calls returned an error, by component and call.
    public var errors: [Call: Int] = [:]
    /// How many times each sink's batch was replayed from `begin` after a RETRY, by sink name.
    public var sinkRetries: [String: Int] = [:]

    public init(errors: [Call: Int] = [:], sinkRetries: [String: Int] = [:]) {
        self.errors = errors
        self.sinkRetries = sinkRetries
    }

    public var isEmpty: Bool { errors.isEmpty && sinkRetries.isEmpty }
}
