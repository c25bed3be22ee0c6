import Foundation

/// The namespace could not be connected to within the retry budget: the broker is down or unreachable, which is
/// not a configuration error. Names the address, what was tried and for how long; never the key.
struct EventHubsUnreachable: Error, CustomStringConvertible {
    /// `host:port`.
    let address: String
    let attempts: Int
    let seconds: Double
    let timeoutMs: Int
    /// What the source was doing (connecting at start, reading properties, ...).
    let what: String
    let lastError: String

    var description: String {
        "\(what): the Event Hubs namespace at \(address) is unreachable: \(attempts) connection attempt\(attempts == 1 ? "" : "s") over "
            + String(format: "%.1f", seconds) + " s (back-off 0.1 s doubling to 2 s, for up to eventhubs.receiveTimeoutMs = \(timeoutMs) ms) failed; "
            + "last error: \(lastError)"
    }
}
