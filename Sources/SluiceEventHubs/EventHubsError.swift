/// A problem talking to Event Hubs, or with its configuration: what happened, in words an operator can act on. Keys
/// and tokens never appear in it.
public struct EventHubsError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Hashable, Sendable {
            case configuration, authentication, notFound, linkStolen, serverBusy, outOfRange, timeout, connection, protocolViolation, dataLoss
        }
        let base: Base
        /// The configuration (a connection string, a key, an option) is wrong.
        public static let configuration = Kind(base: .configuration)
        /// The service refused the credentials (wrong key, expired token, no rights).
        public static let authentication = Kind(base: .authentication)
        /// The namespace, event hub, consumer group or partition does not exist.
        public static let notFound = Kind(base: .notFound)
        /// Another receiver with a higher owner level took the partition (`amqp:link:stolen`).
        public static let linkStolen = Kind(base: .linkStolen)
        /// The service asks to back off (`com.microsoft:server-busy`).
        public static let serverBusy = Kind(base: .serverBusy)
        /// A position outside what the partition holds (`com.microsoft:argument-out-of-range`).
        public static let outOfRange = Kind(base: .outOfRange)
        /// No answer in time.
        public static let timeout = Kind(base: .timeout)
        /// The connection failed or was closed.
        public static let connection = Kind(base: .connection)
        /// The peer broke the AMQP protocol.
        public static let protocolViolation = Kind(base: .protocolViolation)
        /// Events expired before they were read.
        public static let dataLoss = Kind(base: .dataLoss)
        public var description: String { base.rawValue }
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Whether retrying after a back-off may succeed.
    public var isTransient: Bool { [.serverBusy, .timeout, .connection].contains(kind) }
}
