/// The performatives of AMQP 1.0 transport (part 2.7): the bodies of AMQP frames.

/// `open` (0x10): the connection's parameters.
public struct AMQPOpen: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x10
    public static let descriptorName = "amqp:open:list"
    public static let fieldCount = 10

    public var containerID: String
    public var hostname: String?
    public var maxFrameSize: UInt32?
    public var channelMax: UInt16?
    /// Milliseconds; the peer must send something at least this often.
    public var idleTimeout: UInt32?
    public var offeredCapabilities: [String]
    public var desiredCapabilities: [String]
    public var properties: AMQPMap?

    public init(
        containerID: String, hostname: String? = nil, maxFrameSize: UInt32? = nil, channelMax: UInt16? = nil,
        idleTimeout: UInt32? = nil, offeredCapabilities: [String] = [], desiredCapabilities: [String] = [],
        properties: AMQPMap? = nil
    ) {
        self.containerID = containerID
        self.hostname = hostname
        self.maxFrameSize = maxFrameSize
        self.channelMax = channelMax
        self.idleTimeout = idleTimeout
        self.offeredCapabilities = offeredCapabilities
        self.desiredCapabilities = desiredCapabilities
        self.properties = properties
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        containerID = try f.string(0, "container-id")
        hostname = try f.optionalString(1, "hostname")
        maxFrameSize = try f.optionalUInt32(2, "max-frame-size")
        channelMax = try f.optionalUInt16(3, "channel-max")
        idleTimeout = try f.optionalUInt32(4, "idle-time-out")
        offeredCapabilities = try f.symbols(7, "offered-capabilities")
        desiredCapabilities = try f.symbols(8, "desired-capabilities")
        properties = try f.optionalMap(9, "properties")
    }

    public var fields: [AMQPValue] {
        [
            .string(containerID), .from(hostname, AMQPValue.string), .from(maxFrameSize, AMQPValue.uint),
            .from(channelMax, AMQPValue.ushort), .from(idleTimeout, AMQPValue.uint), .null, .null,
            .symbols(offeredCapabilities), .symbols(desiredCapabilities), .from(properties, AMQPValue.map),
        ]
    }
}

/// `begin` (0x11): a session.
public struct AMQPBegin: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x11
    public static let descriptorName = "amqp:begin:list"
    public static let fieldCount = 8

    /// Set in the reply: the channel of the `begin` it answers.
    public var remoteChannel: UInt16?
    public var nextOutgoingID: UInt32
    public var incomingWindow: UInt32
    public var outgoingWindow: UInt32
    public var handleMax: UInt32?
    public var properties: AMQPMap?

    public init(
        remoteChannel: UInt16? = nil, nextOutgoingID: UInt32, incomingWindow: UInt32, outgoingWindow: UInt32,
        handleMax: UInt32? = nil, properties: AMQPMap? = nil
    ) {
        self.remoteChannel = remoteChannel
        self.nextOutgoingID = nextOutgoingID
        self.incomingWindow = incomingWindow
        self.outgoingWindow = outgoingWindow
        self.handleMax = handleMax
        self.properties = properties
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        remoteChannel = try f.optionalUInt16(0, "remote-channel")
        nextOutgoingID = try f.uint32(1, "next-outgoing-id")
        incomingWindow = try f.uint32(2, "incoming-window")
        outgoingWindow = try f.uint32(3, "outgoing-window")
        handleMax = try f.optionalUInt32(4, "handle-max")
        properties = try f.optionalMap(7, "properties")
    }

    public var fields: [AMQPValue] {
        [
            .from(remoteChannel, AMQPValue.ushort), .uint(nextOutgoingID), .uint(incomingWindow), .uint(outgoingWindow),
            .from(handleMax, AMQPValue.uint), .null, .null, .from(properties, AMQPValue.map),
        ]
    }
}

/// Which end of a link: a sender (`false` on the wire) or a receiver (`true`).
public enum AMQPRole: Hashable, Sendable {
    case sender, receiver
    var wire: Bool { self == .receiver }
}

/// `attach` (0x12): a link.
public struct AMQPAttach: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x12
    public static let descriptorName = "amqp:attach:list"
    public static let fieldCount = 14

    public var name: String
    public var handle: UInt32
    public var role: AMQPRole
    /// 0 unsettled, 1 settled, 2 mixed (the default).
    public var senderSettleMode: UInt8?
    /// 0 first (the default), 1 second.
    public var receiverSettleMode: UInt8?
    public var source: AMQPSource?
    public var target: AMQPTarget?
    public var initialDeliveryCount: UInt32?
    public var maxMessageSize: UInt64?
    public var offeredCapabilities: [String]
    public var desiredCapabilities: [String]
    public var properties: AMQPMap?

    public init(
        name: String, handle: UInt32, role: AMQPRole, senderSettleMode: UInt8? = nil, receiverSettleMode: UInt8? = nil,
        source: AMQPSource? = nil, target: AMQPTarget? = nil, initialDeliveryCount: UInt32? = nil,
        maxMessageSize: UInt64? = nil, offeredCapabilities: [String] = [], desiredCapabilities: [String] = [],
        properties: AMQPMap? = nil
    ) {
        self.name = name
        self.handle = handle
        self.role = role
        self.senderSettleMode = senderSettleMode
        self.receiverSettleMode = receiverSettleMode
        self.source = source
        self.target = target
        self.initialDeliveryCount = initialDeliveryCount
        self.maxMessageSize = maxMessageSize
        self.offeredCapabilities = offeredCapabilities
        self.desiredCapabilities = desiredCapabilities
        self.properties = properties
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        name = try f.string(0, "name")
        handle = try f.uint32(1, "handle")
        role = try f.role(2)
        senderSettleMode = try f.optionalUInt8(3, "snd-settle-mode")
        receiverSettleMode = try f.optionalUInt8(4, "rcv-settle-mode")
        source = try f.optional(5, "source", as: AMQPSource.self)
        target = try f.optional(6, "target", as: AMQPTarget.self)
        initialDeliveryCount = try f.optionalUInt32(9, "initial-delivery-count")
        maxMessageSize = try f.optionalUInt64(10, "max-message-size")
        offeredCapabilities = try f.symbols(11, "offered-capabilities")
        desiredCapabilities = try f.symbols(12, "desired-capabilities")
        properties = try f.optionalMap(13, "properties")
    }

    public var fields: [AMQPValue] {
        [
            .string(name), .uint(handle), .boolean(role.wire), .from(senderSettleMode, AMQPValue.ubyte),
            .from(receiverSettleMode, AMQPValue.ubyte), source?.amqpValue ?? .null, target?.amqpValue ?? .null, .null, .null,
            .from(initialDeliveryCount, AMQPValue.uint), .from(maxMessageSize, AMQPValue.ulong),
            .symbols(offeredCapabilities), .symbols(desiredCapabilities), .from(properties, AMQPValue.map),
        ]
    }
}

/// `flow` (0x13): session windows and, with a handle, a link's credit.
public struct AMQPFlow: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x13
    public static let descriptorName = "amqp:flow:list"
    public static let fieldCount = 11

    public var nextIncomingID: UInt32?
    public var incomingWindow: UInt32
    public var nextOutgoingID: UInt32
    public var outgoingWindow: UInt32
    public var handle: UInt32?
    public var deliveryCount: UInt32?
    public var linkCredit: UInt32?
    public var available: UInt32?
    public var drain: Bool
    public var echo: Bool
    public var properties: AMQPMap?

    public init(
        nextIncomingID: UInt32?, incomingWindow: UInt32, nextOutgoingID: UInt32, outgoingWindow: UInt32,
        handle: UInt32? = nil, deliveryCount: UInt32? = nil, linkCredit: UInt32? = nil, available: UInt32? = nil,
        drain: Bool = false, echo: Bool = false, properties: AMQPMap? = nil
    ) {
        self.nextIncomingID = nextIncomingID
        self.incomingWindow = incomingWindow
        self.nextOutgoingID = nextOutgoingID
        self.outgoingWindow = outgoingWindow
        self.handle = handle
        self.deliveryCount = deliveryCount
        self.linkCredit = linkCredit
        self.available = available
        self.drain = drain
        self.echo = echo
        self.properties = properties
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        nextIncomingID = try f.optionalUInt32(0, "next-incoming-id")
        incomingWindow = try f.uint32(1, "incoming-window")
        nextOutgoingID = try f.uint32(2, "next-outgoing-id")
        outgoingWindow = try f.uint32(3, "outgoing-window")
        handle = try f.optionalUInt32(4, "handle")
        deliveryCount = try f.optionalUInt32(5, "delivery-count")
        linkCredit = try f.optionalUInt32(6, "link-credit")
        available = try f.optionalUInt32(7, "available")
        drain = try f.bool(8, "drain", default: false)
        echo = try f.bool(9, "echo", default: false)
        properties = try f.optionalMap(10, "properties")
    }

    public var fields: [AMQPValue] {
        [
            .from(nextIncomingID, AMQPValue.uint), .uint(incomingWindow), .uint(nextOutgoingID), .uint(outgoingWindow),
            .from(handle, AMQPValue.uint), .from(deliveryCount, AMQPValue.uint), .from(linkCredit, AMQPValue.uint),
            .from(available, AMQPValue.uint), .boolean(drain), .boolean(echo), .from(properties, AMQPValue.map),
        ]
    }
}

/// `transfer` (0x14): (part of) a message on a link. The message bytes follow the performative in the frame.
public struct AMQPTransfer: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x14
    public static let descriptorName = "amqp:transfer:list"
    public static let fieldCount = 11

    public var handle: UInt32
    /// Present on the first frame of a delivery; continuation frames may leave it out.
    public var deliveryID: UInt32?
    public var deliveryTag: [UInt8]?
    public var messageFormat: UInt32?
    public var settled: Bool?
    /// More frames of this delivery follow.
    public var more: Bool
    public var receiverSettleMode: UInt8?
    public var state: AMQPDeliveryState?
    public var resume: Bool
    public var aborted: Bool
    public var batchable: Bool

    public init(
        handle: UInt32, deliveryID: UInt32? = nil, deliveryTag: [UInt8]? = nil, messageFormat: UInt32? = nil,
        settled: Bool? = nil, more: Bool = false, receiverSettleMode: UInt8? = nil, state: AMQPDeliveryState? = nil,
        resume: Bool = false, aborted: Bool = false, batchable: Bool = false
    ) {
        self.handle = handle
        self.deliveryID = deliveryID
        self.deliveryTag = deliveryTag
        self.messageFormat = messageFormat
        self.settled = settled
        self.more = more
        self.receiverSettleMode = receiverSettleMode
        self.state = state
        self.resume = resume
        self.aborted = aborted
        self.batchable = batchable
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        handle = try f.uint32(0, "handle")
        deliveryID = try f.optionalUInt32(1, "delivery-id")
        deliveryTag = try f.optionalBinary(2, "delivery-tag")
        messageFormat = try f.optionalUInt32(3, "message-format")
        settled = try f.optionalBool(4, "settled")
        more = try f.bool(5, "more", default: false)
        receiverSettleMode = try f.optionalUInt8(6, "rcv-settle-mode")
        state = f[7].isNull ? nil : try AMQPDeliveryState(f[7])
        resume = try f.bool(8, "resume", default: false)
        aborted = try f.bool(9, "aborted", default: false)
        batchable = try f.bool(10, "batchable", default: false)
    }

    public var fields: [AMQPValue] {
        [
            .uint(handle), .from(deliveryID, AMQPValue.uint), .from(deliveryTag, AMQPValue.binary),
            .from(messageFormat, AMQPValue.uint), .from(settled, AMQPValue.boolean), .boolean(more),
            .from(receiverSettleMode, AMQPValue.ubyte), state?.amqpValue ?? .null, .boolean(resume), .boolean(aborted),
            .boolean(batchable),
        ]
    }
}

/// `disposition` (0x15): the state or settlement of a range of deliveries.
public struct AMQPDisposition: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x15
    public static let descriptorName = "amqp:disposition:list"
    public static let fieldCount = 6

    public var role: AMQPRole
    public var first: UInt32
    public var last: UInt32?
    public var settled: Bool
    public var state: AMQPDeliveryState?
    public var batchable: Bool

    public init(role: AMQPRole, first: UInt32, last: UInt32? = nil, settled: Bool, state: AMQPDeliveryState? = nil, batchable: Bool = false) {
        self.role = role
        self.first = first
        self.last = last
        self.settled = settled
        self.state = state
        self.batchable = batchable
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        role = try f.role(0)
        first = try f.uint32(1, "first")
        last = try f.optionalUInt32(2, "last")
        settled = try f.bool(3, "settled", default: false)
        state = f[4].isNull ? nil : try AMQPDeliveryState(f[4])
        batchable = try f.bool(5, "batchable", default: false)
    }

    public var fields: [AMQPValue] {
        [.boolean(role.wire), .uint(first), .from(last, AMQPValue.uint), .boolean(settled), state?.amqpValue ?? .null, .boolean(batchable)]
    }
}

/// `detach` (0x16): a link ends (or is suspended when `closed` is false).
public struct AMQPDetach: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x16
    public static let descriptorName = "amqp:detach:list"
    public static let fieldCount = 3

    public var handle: UInt32
    public var closed: Bool
    public var error: AMQPRemoteError?

    public init(handle: UInt32, closed: Bool = true, error: AMQPRemoteError? = nil) {
        self.handle = handle
        self.closed = closed
        self.error = error
    }

    public init(fields f: AMQPFields) throws(AMQPError) {
        handle = try f.uint32(0, "handle")
        closed = try f.bool(1, "closed", default: false)
        error = try f.optional(2, "error", as: AMQPRemoteError.self)
    }

    public var fields: [AMQPValue] { [.uint(handle), .boolean(closed), error?.amqpValue ?? .null] }
}

/// `end` (0x17): a session ends.
public struct AMQPEnd: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x17
    public static let descriptorName = "amqp:end:list"
    public static let fieldCount = 1

    public var error: AMQPRemoteError?
    public init(error: AMQPRemoteError? = nil) { self.error = error }
    public init(fields f: AMQPFields) throws(AMQPError) { error = try f.optional(0, "error", as: AMQPRemoteError.self) }
    public var fields: [AMQPValue] { [error?.amqpValue ?? .null] }
}

/// `close` (0x18): the connection ends.
public struct AMQPClose: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x18
    public static let descriptorName = "amqp:close:list"
    public static let fieldCount = 1

    public var error: AMQPRemoteError?
    public init(error: AMQPRemoteError? = nil) { self.error = error }
    public init(fields f: AMQPFields) throws(AMQPError) { error = try f.optional(0, "error", as: AMQPRemoteError.self) }
    public var fields: [AMQPValue] { [error?.amqpValue ?? .null] }
}

/// The body of an AMQP frame.
public enum AMQPPerformative: Hashable, Sendable {
    // The rare, large performatives are boxed, so that the enum is the size of a transfer: a frame value is copied
    // several times on its way through a channel pipeline, once per transfer on a busy link.
    indirect case open(AMQPOpen)
    indirect case begin(AMQPBegin)
    indirect case attach(AMQPAttach)
    case flow(AMQPFlow)
    case transfer(AMQPTransfer)
    case disposition(AMQPDisposition)
    indirect case detach(AMQPDetach)
    indirect case end(AMQPEnd)
    indirect case close(AMQPClose)

    /// Reads a performative from its described list (by code or by name).
    public init(_ value: AMQPValue) throws(AMQPError) {
        guard case .described(let descriptor, _) = value else {
            throw AMQPError(.invalidValue, "a frame body must be a described performative, not a \(value.typeName)")
        }
        if AMQPOpen.isDescribed(by: descriptor) { self = .open(try AMQPOpen(value)) }
        else if AMQPBegin.isDescribed(by: descriptor) { self = .begin(try AMQPBegin(value)) }
        else if AMQPAttach.isDescribed(by: descriptor) { self = .attach(try AMQPAttach(value)) }
        else if AMQPFlow.isDescribed(by: descriptor) { self = .flow(try AMQPFlow(value)) }
        else if AMQPTransfer.isDescribed(by: descriptor) { self = .transfer(try AMQPTransfer(value)) }
        else if AMQPDisposition.isDescribed(by: descriptor) { self = .disposition(try AMQPDisposition(value)) }
        else if AMQPDetach.isDescribed(by: descriptor) { self = .detach(try AMQPDetach(value)) }
        else if AMQPEnd.isDescribed(by: descriptor) { self = .end(try AMQPEnd(value)) }
        else if AMQPClose.isDescribed(by: descriptor) { self = .close(try AMQPClose(value)) }
        else { throw AMQPError(.invalidValue, "\(descriptor) is not an AMQP performative") }
    }

    public var amqpValue: AMQPValue {
        switch self {
        case .open(let p): p.amqpValue
        case .begin(let p): p.amqpValue
        case .attach(let p): p.amqpValue
        case .flow(let p): p.amqpValue
        case .transfer(let p): p.amqpValue
        case .disposition(let p): p.amqpValue
        case .detach(let p): p.amqpValue
        case .end(let p): p.amqpValue
        case .close(let p): p.amqpValue
        }
    }

    /// The performative's name, for logs and errors.
    public var name: String {
        switch self {
        case .open: "open"
        case .begin: "begin"
        case .attach: "attach"
        case .flow: "flow"
        case .transfer: "transfer"
        case .disposition: "disposition"
        case .detach: "detach"
        case .end: "end"
        case .close: "close"
        }
    }
}
