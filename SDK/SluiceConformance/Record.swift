import SluiceSDK

/// One record in a form that is easy to write and compare in tests.
public struct Record: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Value: Equatable, Hashable, Sendable {
        case text(String)
        case int(Int64)
    }

    public var key: String?
    public var value: Value
    public var timestamp: Int64?

    /// A record with a text value.
    public init(_ text: String, key: String? = nil, timestamp: Int64? = nil) {
        self.key = key
        self.value = .text(text)
        self.timestamp = timestamp
    }

    /// A record with an integer value.
    public init(int: Int64, key: String? = nil, timestamp: Int64? = nil) {
        self.key = key
        self.value = .int(int)
        self.timestamp = timestamp
    }

    public var description: String {
        let shown: String
        switch value {
        case .text(let text): shown = "\"\(text)\""
        case .int(let int): shown = String(int)
        }
        let base = key.map { "(\($0), \(shown))" } ?? shown
        return timestamp.map { "\(base)@\($0)" } ?? base
    }

    /// The records of a batch.
    public static func records(of batch: BatchView) -> [Record] {
        (0..<batch.count).map { i in
            let value: Value
            switch batch.valueType {
            case .bytes: value = .text(batch.valueString(at: i))
            case .int64: value = .int(batch.int64Value(at: i))
            }
            return Record(key: batch.keyString(at: i), value: value, timestamp: batch.timestamp(at: i))
        }
    }

    private init(key: String?, value: Value, timestamp: Int64?) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
    }
}

extension OwnedBatch {
    /// A batch holding `records`. All values must be of one kind (text or integers); keys and timestamps are
    /// included when any record has one.
    public static func of(_ records: [Record]) -> OwnedBatch {
        let integers = !records.isEmpty && records.allSatisfy { if case .int = $0.value { true } else { false } }
        let keyed = records.contains { $0.key != nil }
        let timed = records.contains { $0.timestamp != nil }
        var builder = BatchBuilder(valueType: integers ? .int64 : .bytes, keyed: keyed, timestamps: timed)
        for record in records {
            if var key = record.key {
                key.withUTF8 { key in
                    switch record.value {
                    case .int(let int): builder.append(key: UnsafeRawBufferPointer(key), value: int)
                    case .text(var text):
                        text.withUTF8 { builder.append(key: UnsafeRawBufferPointer(key), value: UnsafeRawBufferPointer($0)) }
                    }
                }
            } else {
                switch record.value {
                case .int(let int): builder.append(int)
                case .text(let text):
                    precondition(!integers, "mixed text and integer values in one batch")
                    builder.append(text)
                }
            }
            if let timestamp = record.timestamp { builder.setLastTimestamp(timestamp) }
        }
        return OwnedBatch(builder)
    }

    /// The records of this batch.
    public var records: [Record] { Record.records(of: view) }
}
