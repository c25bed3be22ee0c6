import SluiceEventHubs
import SluiceSDK

/// The `eventhubs` source's options: the seed's `eventhubs.*` entries, or a connection string.
public struct EventHubsSourceConfiguration: Decodable, Sendable {
    var connectionString: String?
    var namespace: String?
    var names: [String]?
    var policyName: String?
    var policyKey: String?
    var partitionCount: Int?
    var consumerGroup: String
    var maxRate: Int
    var startingPosition: String
    var ownerLevel: Int?
    var failOnDataLoss: Bool
    var receiveTimeoutMs: Int
    var useDevelopmentEmulator: Bool
    var trustedCertificates: String?
    var recordValue: String
    var partitionDiscoveryMs: Int

    enum CodingKeys: String, CodingKey {
        case connectionString = "connection_string"
        case namespace = "eventhubs.namespace"
        case names = "eventhubs.name"
        case policyName = "eventhubs.policyname"
        case policyKey = "eventhubs.policykey"
        case partitionCount = "eventhubs.partition.count"
        case consumerGroup = "eventhubs.consumergroup"
        case maxRate = "eventhubs.maxRate"
        case startingPosition = "eventhubs.startingPosition"
        case ownerLevel = "eventhubs.ownerLevel"
        case failOnDataLoss = "eventhubs.failOnDataLoss"
        case receiveTimeoutMs = "eventhubs.receiveTimeoutMs"
        case useDevelopmentEmulator = "eventhubs.useDevelopmentEmulator"
        case trustedCertificates = "eventhubs.trustedCertificates"
        case recordValue = "eventhubs.recordValue"
        case partitionDiscoveryMs = "eventhubs.partitionDiscoveryMs"
    }

    static let options: [ConfigOption] = [
        .secret("connection_string", description: "An Event Hubs connection string (instead of the eventhubs.* keys); EntityPath names the hub"),
        .string("eventhubs.namespace", description: "The namespace: NAME (NAME.servicebus.windows.net) or HOST[:PORT]"),
        .strings("eventhubs.name", description: "The event hubs read into this one stream (their partitions are the stream's partitions)"),
        .string("eventhubs.policyname", description: "The shared access policy (key name)"),
        .secret("eventhubs.policykey", description: "The shared access key (never shown: masked in every message)"),
        .integer("eventhubs.partition.count", description: "Partitions expected per hub; the start fails if a hub has fewer"),
        .string("eventhubs.consumergroup", description: "The consumer group", default: "$Default"),
        .integer("eventhubs.maxRate", description: "The most events read from one partition in one batch", default: 10_000),
        .string(
            "eventhubs.startingPosition",
            description: "Where partitions without a committed position start: earliest, latest, a sequence number, or an enqueued time in ms (@MS)",
            default: "latest"
        ),
        .integer("eventhubs.ownerLevel", description: "Owner level (epoch) of the receivers: a higher one takes partitions from lower ones"),
        .boolean("eventhubs.failOnDataLoss", description: "Fail when events expired before they were read (false: warn, skip and count)", default: true),
        .integer("eventhubs.receiveTimeoutMs", description: "How long a batch keeps trying to read its planned events (retrying faults) before it fails", default: 30_000),
        .boolean("eventhubs.useDevelopmentEmulator", description: "Plain TCP to a local emulator (with eventhubs.namespace)", default: false),
        .path("eventhubs.trustedCertificates", description: "PEM certificates to trust instead of the system's (a private CA, a test certificate)"),
        .string(
            "eventhubs.recordValue",
            description: "body: the record's value is the event body; json: an object with the body, hub, partition, sequence number, offset, enqueued time, partition key and properties",
            default: "body", allowed: ["body", "json"]
        ),
        .integer("eventhubs.partitionDiscoveryMs", description: "How often to look for partitions added to the hubs", default: 30_000),
    ]

    /// The connection string and the hubs, from either form; errors name the option.
    func resolve() throws -> (EventHubsConnectionString, [String]) {
        var connection: EventHubsConnectionString
        if let text = connectionString {
            guard namespace == nil, policyName == nil, policyKey == nil else {
                throw PluginError("configuration: give either 'connection_string' or 'eventhubs.namespace'/'eventhubs.policyname'/'eventhubs.policykey', not both")
            }
            do { connection = try EventHubsConnectionString(parsing: text) } catch {
                throw PluginError("configuration key 'connection_string': \(error.message)")
            }
        } else {
            guard let namespace, !namespace.isEmpty else {
                throw PluginError("configuration: 'connection_string' or 'eventhubs.namespace' is required")
            }
            guard let policyName, let policyKey, !policyName.isEmpty, !policyKey.isEmpty else {
                throw PluginError("configuration: 'eventhubs.policyname' and 'eventhubs.policykey' are required with 'eventhubs.namespace'")
            }
            let host = namespace.contains(".") || namespace.contains(":") || namespace == "localhost" ? namespace : "\(namespace).servicebus.windows.net"
            let (name, port): (String, Int?)
            do { (name, port) = try EventHubsConnectionString.parseEndpoint(host) } catch {
                throw PluginError("configuration key 'eventhubs.namespace': \(error.message)")
            }
            connection = EventHubsConnectionString(
                host: name, port: port, credential: .sharedAccessKey(name: policyName, key: policyKey), useDevelopmentEmulator: useDevelopmentEmulator
            )
        }
        if useDevelopmentEmulator { connection.useDevelopmentEmulator = true }
        var hubs = names ?? []
        if hubs.isEmpty, let entity = connection.entityPath { hubs = [entity] }
        guard !hubs.isEmpty else { throw PluginError("configuration key 'eventhubs.name': no event hub named (or EntityPath in the connection string)") }
        guard Set(hubs.map { $0.lowercased() }).count == hubs.count else { throw PluginError("configuration key 'eventhubs.name': a hub is named twice") }
        guard maxRate > 0 else { throw PluginError("configuration key 'eventhubs.maxRate': must be positive") }
        guard partitionDiscoveryMs > 0 else { throw PluginError("configuration key 'eventhubs.partitionDiscoveryMs': must be positive") }
        guard receiveTimeoutMs > 0 else { throw PluginError("configuration key 'eventhubs.receiveTimeoutMs': must be positive") }
        if let partitionCount, partitionCount <= 0 { throw PluginError("configuration key 'eventhubs.partition.count': must be positive") }
        _ = try position()
        return (connection, hubs)
    }

    /// The starting position for partitions without a committed one.
    func position() throws -> EventPosition {
        switch startingPosition.lowercased() {
        case "earliest": return .earliest
        case "latest": return .latest
        default:
            if startingPosition.hasPrefix("@"), let ms = Int64(startingPosition.dropFirst()) { return .enqueuedTime(ms) }
            if let n = Int64(startingPosition), n >= 0 { return .sequenceNumber(n) }
            throw PluginError("configuration key 'eventhubs.startingPosition': '\(startingPosition)' is not earliest, latest, a sequence number or @MILLISECONDS")
        }
    }
}
