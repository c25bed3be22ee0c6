/// What an emulator serves: event hubs with their partitions and consumer groups, the keys that sign tokens, and
/// how long events are kept.
public struct EmulatorConfiguration: Sendable {
    public struct Hub: Sendable, Hashable {
        public var name: String
        public var partitionCount: Int
        /// Besides `$Default`, which every hub has.
        public var consumerGroups: [String]

        public init(name: String, partitionCount: Int, consumerGroups: [String] = []) {
            self.name = name
            self.partitionCount = partitionCount
            self.consumerGroups = consumerGroups
        }
    }

    public var hubs: [Hub]
    /// Shared access key names and their keys; tokens must be signed with one of them.
    public var keys: [String: String]
    /// Events older than this many seconds are dropped (nil: kept for the life of the emulator).
    public var retentionSeconds: Double?
    /// The largest frame accepted and announced.
    public var maxFrameSize: UInt32

    public init(hubs: [Hub], keys: [String: String] = ["RootManageSharedAccessKey": "SAS_KEY_VALUE"], retentionSeconds: Double? = nil, maxFrameSize: UInt32 = 1 << 20) {
        self.hubs = hubs
        self.keys = keys
        self.retentionSeconds = retentionSeconds
        self.maxFrameSize = maxFrameSize
    }

    /// Checks names and counts; the error names the hub.
    public func validate() throws(EmulatorError) {
        guard !hubs.isEmpty else { throw EmulatorError("no event hub configured (give at least one, e.g. --hub eh1:4)") }
        var seen = Set<String>()
        for hub in hubs {
            guard !hub.name.isEmpty, hub.name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw EmulatorError("event hub name '\(hub.name)' may contain only letters, digits, '-', '_' and '.'")
            }
            guard seen.insert(hub.name.lowercased()).inserted else { throw EmulatorError("event hub '\(hub.name)' is configured twice") }
            guard (1...1024).contains(hub.partitionCount) else {
                throw EmulatorError("event hub '\(hub.name)': \(hub.partitionCount) partitions (1 to 1024 allowed)")
            }
        }
        guard !keys.isEmpty else { throw EmulatorError("no shared access key configured") }
        if let retentionSeconds, retentionSeconds <= 0 { throw EmulatorError("retention must be positive") }
    }
}

/// A problem starting or configuring the emulator.
public struct EmulatorError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
