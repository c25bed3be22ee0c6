import NIOCore

/// `header` (0x70): transport headers of a message.
public struct AMQPMessageHeader: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x70
    public static let descriptorName = "amqp:header:list"
    public static let fieldCount = 5
    public var durable: Bool
    public var priority: UInt8?
    public var ttl: UInt32?
    public var firstAcquirer: Bool
    public var deliveryCount: UInt32?

    public init(durable: Bool = false, priority: UInt8? = nil, ttl: UInt32? = nil, firstAcquirer: Bool = false, deliveryCount: UInt32? = nil) {
        self.durable = durable
        self.priority = priority
        self.ttl = ttl
        self.firstAcquirer = firstAcquirer
        self.deliveryCount = deliveryCount
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        durable = try f.bool(0, "durable", default: false)
        priority = try f.optionalUInt8(1, "priority")
        ttl = try f.optionalUInt32(2, "ttl")
        firstAcquirer = try f.bool(3, "first-acquirer", default: false)
        deliveryCount = try f.optionalUInt32(4, "delivery-count")
    }

    public var fields: [AMQPValue] {
        [.boolean(durable), .from(priority, AMQPValue.ubyte), .from(ttl, AMQPValue.uint), .boolean(firstAcquirer), .from(deliveryCount, AMQPValue.uint)]
    }
}

/// `properties` (0x73): the immutable properties of a message. Ids may be ulong, uuid, binary or string, so they
/// stay AMQP values.
public struct AMQPMessageProperties: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x73
    public static let descriptorName = "amqp:properties:list"
    public static let fieldCount = 13
    public var messageID: AMQPValue = .null
    public var userID: [UInt8]?
    public var to: String?
    public var subject: String?
    public var replyTo: String?
    public var correlationID: AMQPValue = .null
    public var contentType: String?
    public var contentEncoding: String?
    public var absoluteExpiryTime: Int64?
    public var creationTime: Int64?
    public var groupID: String?
    public var groupSequence: UInt32?
    public var replyToGroupID: String?

    public init() {}

    public init(fields f: AMQPFields) throws(AMQPError) {
        messageID = f[0]
        userID = try f.optionalBinary(1, "user-id")
        to = try f.optionalString(2, "to")
        subject = try f.optionalString(3, "subject")
        replyTo = try f.optionalString(4, "reply-to")
        correlationID = f[5]
        contentType = try f.optionalString(6, "content-type")
        contentEncoding = try f.optionalString(7, "content-encoding")
        absoluteExpiryTime = try Self.timestamp(f, 8, "absolute-expiry-time")
        creationTime = try Self.timestamp(f, 9, "creation-time")
        groupID = try f.optionalString(10, "group-id")
        groupSequence = try f.optionalUInt32(11, "group-sequence")
        replyToGroupID = try f.optionalString(12, "reply-to-group-id")
    }

    private static func timestamp(_ f: AMQPFields, _ index: Int, _ name: String) throws(AMQPError) -> Int64? {
        switch f[index] {
        case .null: return nil
        case .timestamp(let t): return t
        default: throw AMQPError(.invalidValue, "\(descriptorName): field \(index) '\(name)' should be a timestamp, not \(f[index].typeName)")
        }
    }

    public var fields: [AMQPValue] {
        [
            messageID, .from(userID, AMQPValue.binary), .from(to, AMQPValue.string), .from(subject, AMQPValue.string),
            .from(replyTo, AMQPValue.string), correlationID, .from(contentType, AMQPValue.symbol),
            .from(contentEncoding, AMQPValue.symbol), .from(absoluteExpiryTime, AMQPValue.timestamp),
            .from(creationTime, AMQPValue.timestamp), .from(groupID, AMQPValue.string), .from(groupSequence, AMQPValue.uint),
            .from(replyToGroupID, AMQPValue.string),
        ]
    }
}

/// An AMQP message (part 3.2): the sections in their order, each optional, and a body.
public struct AMQPMessage: Hashable, Sendable {
    public enum Body: Hashable, Sendable {
        /// One or more `data` sections (Event Hubs events carry their body as one).
        case data([[UInt8]])
        /// `amqp-sequence` sections.
        case sequence([[AMQPValue]])
        /// One `amqp-value` section (requests and replies of `$cbs` and `$management`).
        case value(AMQPValue)
        /// No body section at all (allowed; pyamqp's management requests have none).
        case empty
    }

    public var header: AMQPMessageHeader?
    public var deliveryAnnotations: AMQPMap?
    public var messageAnnotations: AMQPMap?
    public var properties: AMQPMessageProperties?
    public var applicationProperties: AMQPMap?
    public var body: Body
    public var footer: AMQPMap?

    /// The batch format of Event Hubs (`0x80013700`): the body's `data` sections each hold one encoded message.
    public static let batchFormat: UInt32 = 0x8001_3700

    public init(
        header: AMQPMessageHeader? = nil, deliveryAnnotations: AMQPMap? = nil, messageAnnotations: AMQPMap? = nil,
        properties: AMQPMessageProperties? = nil, applicationProperties: AMQPMap? = nil, body: Body = .empty,
        footer: AMQPMap? = nil
    ) {
        self.header = header
        self.deliveryAnnotations = deliveryAnnotations
        self.messageAnnotations = messageAnnotations
        self.properties = properties
        self.applicationProperties = applicationProperties
        self.body = body
        self.footer = footer
    }

    private enum Section: UInt64 {
        case header = 0x70, deliveryAnnotations, messageAnnotations, properties, applicationProperties, data, sequence, value, footer

        init?(descriptor: AMQPValue) {
            if let code = descriptor.uint64Value { self.init(rawValue: code); return }
            switch descriptor.text {
            case "amqp:header:list": self = .header
            case "amqp:delivery-annotations:map": self = .deliveryAnnotations
            case "amqp:message-annotations:map": self = .messageAnnotations
            case "amqp:properties:list": self = .properties
            case "amqp:application-properties:map": self = .applicationProperties
            case "amqp:data:binary": self = .data
            case "amqp:amqp-sequence:list": self = .sequence
            case "amqp:amqp-value:*": self = .value
            case "amqp:footer:map": self = .footer
            default: return nil
            }
        }
    }

    /// Reads a message from the whole of `buffer` (a transfer's payload).
    public init(from buffer: ByteBuffer) throws(AMQPError) {
        var buffer = buffer
        self.init()
        var last: Section?
        var data: [[UInt8]] = []
        var sequence: [[AMQPValue]] = []
        while buffer.readableBytes > 0 {
            let value = try buffer.readAMQPValue()
            guard case .described(let descriptor, let inner) = value, let section = Section(descriptor: descriptor) else {
                throw AMQPError(.invalidValue, "a message section must be described by a section code, got \(value.typeName)")
            }
            if let last, section.rawValue < last.rawValue || (section == last && section != .data && section != .sequence) {
                throw AMQPError(.invalidValue, "message section 0x\(String(section.rawValue, radix: 16)) is out of order")
            }
            last = section
            func map() throws(AMQPError) -> AMQPMap {
                guard case .map(let m) = inner else { throw AMQPError(.invalidValue, "message section 0x\(String(section.rawValue, radix: 16)) should be a map, not \(inner.typeName)") }
                return m
            }
            switch section {
            case .header: header = try AMQPMessageHeader(value)
            case .deliveryAnnotations: deliveryAnnotations = try map()
            case .messageAnnotations: messageAnnotations = try map()
            case .properties: properties = try AMQPMessageProperties(value)
            case .applicationProperties: applicationProperties = try map()
            case .data:
                guard case .binary(let bytes) = inner else { throw AMQPError(.invalidValue, "a data section should be binary, not \(inner.typeName)") }
                data.append(bytes)
            case .sequence:
                guard case .list(let items) = inner else { throw AMQPError(.invalidValue, "an amqp-sequence section should be a list, not \(inner.typeName)") }
                sequence.append(items)
            case .value: body = .value(inner)
            case .footer: footer = try map()
            }
        }
        if !data.isEmpty { body = .data(data) } else if !sequence.isEmpty { body = .sequence(sequence) }
    }

    /// Appends the message's sections.
    public func encode(into buffer: inout ByteBuffer) {
        func section(_ code: UInt64, _ value: AMQPValue) {
            buffer.writeAMQPValue(.described(descriptor: .ulong(code), value: value))
        }
        if let header { buffer.writeAMQPValue(header.amqpValue) }
        if let deliveryAnnotations { section(0x71, .map(deliveryAnnotations)) }
        if let messageAnnotations { section(0x72, .map(messageAnnotations)) }
        if let properties { buffer.writeAMQPValue(properties.amqpValue) }
        if let applicationProperties { section(0x74, .map(applicationProperties)) }
        switch body {
        case .data(let sections): for bytes in sections { section(0x75, .binary(bytes)) }
        case .sequence(let sections): for items in sections { section(0x76, .list(items)) }
        case .value(let value): section(0x77, value)
        case .empty: break
        }
        if let footer { section(0x78, .map(footer)) }
    }

    /// The message's encoding.
    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }

    /// An Event Hubs batch envelope (message format `batchFormat`): each message encoded into a `data` section,
    /// with `messageAnnotations` (a batch's partition key) on the envelope.
    public static func batch(_ messages: [AMQPMessage], messageAnnotations: AMQPMap? = nil) -> AMQPMessage {
        AMQPMessage(
            messageAnnotations: messageAnnotations,
            body: .data(messages.map { Array($0.encoded.readableBytesView) })
        )
    }

    /// The messages of a batch envelope.
    public func unbatched() throws(AMQPError) -> [AMQPMessage] {
        guard case .data(let sections) = body else { return [] }
        var messages: [AMQPMessage] = []
        messages.reserveCapacity(sections.count)
        for bytes in sections { messages.append(try AMQPMessage(from: ByteBuffer(bytes: bytes))) }
        return messages
    }
}
