/// A problem with AMQP data or a peer's behaviour: what was wrong and, for decoding, where in the bytes.
public struct AMQPError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Hashable, Sendable {
            case truncated, invalidEncoding, invalidValue, missingField, unexpectedFrame, tooLarge
        }
        let base: Base
        /// The bytes end before the value does.
        public static let truncated = Code(base: .truncated)
        /// A constructor, size or count that is not valid AMQP.
        public static let invalidEncoding = Code(base: .invalidEncoding)
        /// Valid AMQP, but not a value the receiver accepts here (a wrong type for a field).
        public static let invalidValue = Code(base: .invalidValue)
        /// A mandatory field of a composite type is absent or null.
        public static let missingField = Code(base: .missingField)
        /// A frame or performative that the protocol does not allow at this point.
        public static let unexpectedFrame = Code(base: .unexpectedFrame)
        /// A frame or message larger than the agreed maximum.
        public static let tooLarge = Code(base: .tooLarge)
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
