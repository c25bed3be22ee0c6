/// The SASL frames (part 5.3): the bodies of frames of type 1 before the AMQP connection starts.

/// `sasl-mechanisms` (0x40): what the server offers.
public struct SASLMechanisms: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x40
    public static let descriptorName = "amqp:sasl-mechanisms:list"
    public static let fieldCount = 1
    public var mechanisms: [String]
    public init(mechanisms: [String]) { self.mechanisms = mechanisms }
    public init(fields f: AMQPFields) throws(AMQPError) {
        mechanisms = try f.symbols(0, "sasl-server-mechanisms")
        guard !mechanisms.isEmpty else { throw AMQPError(.missingField, "\(Self.descriptorName): the server offers no mechanism") }
    }
    /// Always an array, even of one (the field is a `multiple` symbol).
    public var fields: [AMQPValue] { [.array(.symbols(mechanisms))] }
}

/// `sasl-init` (0x41): the client's choice.
public struct SASLInit: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x41
    public static let descriptorName = "amqp:sasl-init:list"
    public static let fieldCount = 3
    public var mechanism: String
    public var initialResponse: [UInt8]?
    public var hostname: String?
    public init(mechanism: String, initialResponse: [UInt8]? = nil, hostname: String? = nil) {
        self.mechanism = mechanism
        self.initialResponse = initialResponse
        self.hostname = hostname
    }
    public init(fields f: AMQPFields) throws(AMQPError) {
        mechanism = try f.string(0, "mechanism")
        initialResponse = try f.optionalBinary(1, "initial-response")
        hostname = try f.optionalString(2, "hostname")
    }
    public var fields: [AMQPValue] { [.symbol(mechanism), .from(initialResponse, AMQPValue.binary), .from(hostname, AMQPValue.string)] }
}

/// `sasl-challenge` (0x42).
public struct SASLChallenge: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x42
    public static let descriptorName = "amqp:sasl-challenge:list"
    public static let fieldCount = 1
    public var challenge: [UInt8]
    public init(challenge: [UInt8]) { self.challenge = challenge }
    public init(fields f: AMQPFields) throws(AMQPError) {
        challenge = try f.binary(0, "challenge")
    }
    public var fields: [AMQPValue] { [.binary(challenge)] }
}

/// `sasl-response` (0x43).
public struct SASLResponse: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x43
    public static let descriptorName = "amqp:sasl-response:list"
    public static let fieldCount = 1
    public var response: [UInt8]
    public init(response: [UInt8]) { self.response = response }
    public init(fields f: AMQPFields) throws(AMQPError) {
        response = try f.binary(0, "response")
    }
    public var fields: [AMQPValue] { [.binary(response)] }
}

/// `sasl-outcome` (0x44): 0 ok, 1 auth, 2 sys, 3 sys-perm, 4 sys-temp.
public struct SASLOutcome: AMQPComposite, Hashable {
    public static let descriptorCode: UInt64 = 0x44
    public static let descriptorName = "amqp:sasl-outcome:list"
    public static let fieldCount = 2
    public var code: UInt8
    public var additionalData: [UInt8]?
    public init(code: UInt8, additionalData: [UInt8]? = nil) {
        self.code = code
        self.additionalData = additionalData
    }
    public init(fields f: AMQPFields) throws(AMQPError) {
        code = try f.uint8(0, "code")
        additionalData = try f.optionalBinary(1, "additional-data")
    }
    public var fields: [AMQPValue] { [.ubyte(code), .from(additionalData, AMQPValue.binary)] }
}

/// The body of a SASL frame.
public enum SASLFrameBody: Hashable, Sendable {
    case mechanisms(SASLMechanisms)
    case initial(SASLInit)
    case challenge(SASLChallenge)
    case response(SASLResponse)
    case outcome(SASLOutcome)

    public init(_ value: AMQPValue) throws(AMQPError) {
        guard case .described(let descriptor, _) = value else {
            throw AMQPError(.invalidValue, "a SASL frame body must be described, not a \(value.typeName)")
        }
        if SASLMechanisms.isDescribed(by: descriptor) { self = .mechanisms(try SASLMechanisms(value)) }
        else if SASLInit.isDescribed(by: descriptor) { self = .initial(try SASLInit(value)) }
        else if SASLChallenge.isDescribed(by: descriptor) { self = .challenge(try SASLChallenge(value)) }
        else if SASLResponse.isDescribed(by: descriptor) { self = .response(try SASLResponse(value)) }
        else if SASLOutcome.isDescribed(by: descriptor) { self = .outcome(try SASLOutcome(value)) }
        else { throw AMQPError(.invalidValue, "\(descriptor) is not a SASL frame") }
    }

    public var amqpValue: AMQPValue {
        switch self {
        case .mechanisms(let b): b.amqpValue
        case .initial(let b): b.amqpValue
        case .challenge(let b): b.amqpValue
        case .response(let b): b.amqpValue
        case .outcome(let b): b.amqpValue
        }
    }
}
