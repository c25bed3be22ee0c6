/// Why a plugin file was refused. The loader reports it as one line naming the file and the cause, and goes on
/// loading the other files.
public struct PluginLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let notSharedObject = Code("not-shared-object")
        public static let missingEntry = Code("missing-entry")
        public static let refusedHost = Code("refused-host")
        public static let abiMajorMismatch = Code("abi-major-mismatch")
        public static let descriptorTooSmall = Code("descriptor-too-small")
        public static let toolchainMismatch = Code("toolchain-mismatch")
        public static let sdkMismatch = Code("sdk-mismatch")
        public static let duplicateName = Code("duplicate-name")
        public static let invalidSchema = Code("invalid-schema")
        public static let invalidDescriptor = Code("invalid-descriptor")
        /// The file or a directory above it could have been written by someone other than root or the user.
        public static let insecure = Code("insecure")
    }

    public var code: Code
    /// The plugin file.
    public var path: String
    /// What is wrong, in words.
    public var cause: String

    public init(_ code: Code, path: String, cause: String) {
        self.code = code
        self.path = path
        self.cause = cause
    }

    /// `refused plugin PATH: CAUSE`
    public var description: String { "refused plugin \(path): \(cause)" }
}
