/// `source` and `target` (part 3.5), the error type, and delivery states.

/// `source` (0x28): where a link's messages come from; for a receiver, its address and filters.
public struct AMQPSource: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x28
    public static let descriptorName = "amqp:source:list"
    public static let fieldCount = 11

    public var address: String?
    public var durable: UInt32?
    public var expiryPolicy: String?
    public var timeout: UInt32?
    public var dynamic: Bool
    public var dynamicNodeProperties: AMQPMap?
    public var distributionMode: String?
    /// Filters by name; Event Hubs reads `apache.org:selector-filter:string`.
    public var filter: AMQPMap?
    public var defaultOutcome: AMQPValue
    public var outcomes: [String]
    public var capabilities: [String]

    public init(address: String?, filter: AMQPMap? = nil) {
        self.address = address
        durable = nil
        expiryPolicy = nil
        timeout = nil
        dynamic = false
        dynamicNodeProperties = nil
        distributionMode = nil
        self.filter = filter
        defaultOutcome = .null
        outcomes = []
        capabilities = []
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        address = try f.optionalString(0, "address")
        durable = try f.optionalUInt32(1, "durable")
        expiryPolicy = try f.optionalString(2, "expiry-policy")
        timeout = try f.optionalUInt32(3, "timeout")
        dynamic = try f.bool(4, "dynamic", default: false)
        dynamicNodeProperties = try f.optionalMap(5, "dynamic-node-properties")
        distributionMode = try f.optionalString(6, "distribution-mode")
        filter = try f.optionalMap(7, "filter")
        defaultOutcome = f[8]
        outcomes = try f.symbols(9, "outcomes")
        capabilities = try f.symbols(10, "capabilities")
    }

    public var fields: [AMQPValue] {
        [
            .from(address, AMQPValue.string), .from(durable, AMQPValue.uint), .from(expiryPolicy, AMQPValue.symbol),
            .from(timeout, AMQPValue.uint), .boolean(dynamic), .from(dynamicNodeProperties, AMQPValue.map),
            .from(distributionMode, AMQPValue.symbol), .from(filter, AMQPValue.map), defaultOutcome, .symbols(outcomes),
            .symbols(capabilities),
        ]
    }
}

/// `target` (0x29): where a link's messages go.
public struct AMQPTarget: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x29
    public static let descriptorName = "amqp:target:list"
    public static let fieldCount = 7

    public var address: String?
    public var durable: UInt32?
    public var expiryPolicy: String?
    public var timeout: UInt32?
    public var dynamic: Bool
    public var dynamicNodeProperties: AMQPMap?
    public var capabilities: [String]

    public init(address: String?) {
        self.address = address
        durable = nil
        expiryPolicy = nil
        timeout = nil
        dynamic = false
        dynamicNodeProperties = nil
        capabilities = []
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        address = try f.optionalString(0, "address")
        durable = try f.optionalUInt32(1, "durable")
        expiryPolicy = try f.optionalString(2, "expiry-policy")
        timeout = try f.optionalUInt32(3, "timeout")
        dynamic = try f.bool(4, "dynamic", default: false)
        dynamicNodeProperties = try f.optionalMap(5, "dynamic-node-properties")
        capabilities = try f.symbols(6, "capabilities")
    }

    public var fields: [AMQPValue] {
        [
            .from(address, AMQPValue.string), .from(durable, AMQPValue.uint), .from(expiryPolicy, AMQPValue.symbol),
            .from(timeout, AMQPValue.uint), .boolean(dynamic), .from(dynamicNodeProperties, AMQPValue.map),
            .symbols(capabilities),
        ]
    }
}

/// `error` (0x1d): what a peer reports in `detach`, `end`, `close` or a `rejected` outcome.
public struct AMQPRemoteError: AMQPComposite, Hashable, Error, CustomStringConvertible {
    public static let descriptorCode: UInt64 = 0x1d
    public static let descriptorName = "amqp:error:list"
    public static let fieldCount = 3

    /// A symbol such as `amqp:link:stolen` or `com.microsoft:server-busy`.
    public var condition: String
    public var errorDescription: String?
    public var info: AMQPMap?

    public init(condition: String, description: String? = nil, info: AMQPMap? = nil) {
        self.condition = condition
        self.errorDescription = description
        self.info = info
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        condition = try f.string(0, "condition")
        errorDescription = try f.optionalString(1, "description")
        info = try f.optionalMap(2, "info")
    }

    public var fields: [AMQPValue] { [.symbol(condition), .from(errorDescription, AMQPValue.string), .from(info, AMQPValue.map)] }

    public var description: String { errorDescription.map { "\(condition): \($0)" } ?? condition }
}

/// The state of a delivery (part 3.4): `received`, or an outcome.
public enum AMQPDeliveryState: Hashable, Sendable {
    case received(sectionNumber: UInt32, sectionOffset: UInt64)
    case accepted
    case rejected(AMQPRemoteError?)
    case released
    case modified(deliveryFailed: Bool, undeliverableHere: Bool, messageAnnotations: AMQPMap?)
    /// A state this implementation does not know (transactional states, say), kept as it was.
    case other(AMQPValue)

    public init(_ value: AMQPValue) throws(AMQPError) {
        guard case .described(let descriptor, let inner) = value, let code = descriptor.uint64Value ?? Self.code(of: descriptor) else {
            self = .other(value)
            return
        }
        let fields: AMQPFields
        if case .list(let items) = inner { fields = AMQPFields(items, of: "delivery state 0x\(String(code, radix: 16))") } else {
            throw AMQPError(.invalidValue, "a delivery state's fields are a \(inner.typeName), not a list")
        }
        switch code {
        case 0x23:
            self = .received(sectionNumber: try fields.uint32(0, "section-number"), sectionOffset: try fields.optionalUInt64(1, "section-offset") ?? 0)
        case 0x24: self = .accepted
        case 0x25: self = .rejected(try fields.optional(0, "error", as: AMQPRemoteError.self))
        case 0x26: self = .released
        case 0x27:
            self = .modified(
                deliveryFailed: try fields.bool(0, "delivery-failed", default: false),
                undeliverableHere: try fields.bool(1, "undeliverable-here", default: false),
                messageAnnotations: try fields.optionalMap(2, "message-annotations")
            )
        default: self = .other(value)
        }
    }

    private static func code(of descriptor: AMQPValue) -> UInt64? {
        switch descriptor.text {
        case "amqp:received:list": 0x23
        case "amqp:accepted:list": 0x24
        case "amqp:rejected:list": 0x25
        case "amqp:released:list": 0x26
        case "amqp:modified:list": 0x27
        default: nil
        }
    }

    public var amqpValue: AMQPValue {
        func described(_ code: UInt64, _ fields: [AMQPValue]) -> AMQPValue { .described(descriptor: .ulong(code), value: .list(fields)) }
        switch self {
        case .received(let number, let offset): return described(0x23, [.uint(number), .ulong(offset)])
        case .accepted: return described(0x24, [])
        case .rejected(let error): return described(0x25, [error?.amqpValue ?? .null])
        case .released: return described(0x26, [])
        case .modified(let failed, let here, let annotations):
            return described(0x27, [.boolean(failed), .boolean(here), .from(annotations, AMQPValue.map)])
        case .other(let value): return value
        }
    }
}
