/// Livy's batch states, those Sluice uses: `starting` (the child is being started, or waits to be restarted),
/// `running` (its pipeline is loaded and batches run), and the final ones: `success` (a bounded run ended),
/// `dead` (it failed), `killed` (stopped by a DELETE).
public enum BatchState: String, Codable, Sendable, CaseIterable {
    case starting, running, success, dead, killed

    public var isFinal: Bool {
        switch self {
        case .starting, .running: false
        case .success, .dead, .killed: true
        }
    }
}
