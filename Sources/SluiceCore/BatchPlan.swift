/// Where one source partition stands: the next offset to read.
public struct PartitionKey: Hashable, Sendable, Comparable {
    public var source: Int
    public var partition: Int
    public init(source: Int, partition: Int) {
        self.source = source
        self.partition = partition
    }
    public static func < (a: PartitionKey, b: PartitionKey) -> Bool { (a.source, a.partition) < (b.source, b.partition) }
}

/// The exact ranges one batch reads, decided before reading (and, with checkpoints, recorded before reading).
public struct BatchPlan: Sendable, Equatable {
    public struct Range: Sendable, Equatable {
        public var key: PartitionKey
        public var offsets: Swift.Range<UInt64>
        public init(key: PartitionKey, offsets: Swift.Range<UInt64>) {
            self.key = key
            self.offsets = offsets
        }
    }

    public var ranges: [Range]

    public init(ranges: [Range]) { self.ranges = ranges }

    /// The number of records the plan reads.
    public var recordCount: Int { ranges.reduce(0) { $0 + $1.offsets.count } }

    /// The positions after this batch commits.
    public var endPositions: [PartitionKey: UInt64] {
        var result: [PartitionKey: UInt64] = [:]
        for range in ranges { result[range.key] = range.offsets.upperBound }
        return result
    }

    /// Splits each range into read tasks of at most `taskSize` records (the unit of parallelism).
    public func tasks(taskSize: Int) -> [Range] {
        var tasks: [Range] = []
        for range in ranges where !range.offsets.isEmpty {
            var start = range.offsets.lowerBound
            while start < range.offsets.upperBound {
                let end = min(range.offsets.upperBound, start + UInt64(taskSize))
                tasks.append(Range(key: range.key, offsets: start..<end))
                start = end
            }
        }
        return tasks
    }
}

/// Decides the ranges of a batch from what is available and where each partition stands.
public struct BatchPlanner: Sendable {
    /// Plans the next batch: for each partition, from its position to what is available, at most
    /// `maxRecordsPerPartition` records and at most its entry in `caps` (backpressure's limit). A partition seen for
    /// the first time starts at its earliest offset.
    public static func plan(
        available: [PartitionKey: Swift.Range<UInt64>],
        positions: [PartitionKey: UInt64],
        caps: [PartitionKey: Int] = [:],
        maxRecordsPerPartition: (Int) -> Int
    ) -> BatchPlan {
        var ranges: [BatchPlan.Range] = []
        for key in available.keys.sorted() {
            let offered = available[key]!
            // A position below the earliest retained offset means the source forgot records: start from what exists.
            let start = max(positions[key] ?? offered.lowerBound, offered.lowerBound)
            guard start < offered.upperBound else { continue }
            let limit = UInt64(max(1, min(maxRecordsPerPartition(key.source), caps[key] ?? .max)))
            ranges.append(.init(key: key, offsets: start..<min(offered.upperBound, start + limit)))
        }
        return BatchPlan(ranges: ranges)
    }
}
