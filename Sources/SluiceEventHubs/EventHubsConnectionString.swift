/// An Event Hubs connection string, as the Azure portal and the official SDKs write it:
/// `Endpoint=sb://NAMESPACE.servicebus.windows.net/;SharedAccessKeyName=NAME;SharedAccessKey=KEY[;EntityPath=HUB]`,
/// or with `SharedAccessSignature=...` instead of the key pair, and `UseDevelopmentEmulator=true` for a local
/// emulator (plain TCP). Keys are case-insensitive. The description never shows the key or the signature.
public struct EventHubsConnectionString: Hashable, Sendable, CustomStringConvertible {
    public enum Credential: Hashable, Sendable {
        case sharedAccessKey(name: String, key: String)
        case sharedAccessSignature(String)
    }

    /// The namespace's host name.
    public var host: String
    /// The port in the endpoint, when one is given.
    public var port: Int?
    public var credential: Credential
    /// The event hub, when the string names one.
    public var entityPath: String?
    /// Plain TCP without TLS, for a local emulator.
    public var useDevelopmentEmulator: Bool

    public init(host: String, port: Int? = nil, credential: Credential, entityPath: String? = nil, useDevelopmentEmulator: Bool = false) {
        self.host = host
        self.port = port
        self.credential = credential
        self.entityPath = entityPath
        self.useDevelopmentEmulator = useDevelopmentEmulator
    }

    /// Parses a connection string; errors name the key that is wrong and never repeat a secret.
    public init(parsing text: String) throws(EventHubsError) {
        var values: [String: String] = [:]
        for part in text.split(separator: ";", omittingEmptySubsequences: true) {
            let trimmed = part.trimmingWhitespace()
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw EventHubsError(.configuration, "connection string: '\(Self.redactedPart(trimmed))' is not KEY=VALUE")
            }
            let key = trimmed[..<equals].lowercased()
            let value = String(trimmed[trimmed.index(after: equals)...])
            guard Self.knownKeys.contains(key) else {
                throw EventHubsError(
                    .configuration,
                    "connection string: unknown key \(Self.shownKey(trimmed[..<equals])) (known: Endpoint, SharedAccessKeyName, SharedAccessKey, "
                        + "SharedAccessSignature, EntityPath, UseDevelopmentEmulator)"
                )
            }
            guard values[key] == nil else { throw EventHubsError(.configuration, "connection string: '\(trimmed[..<equals])' is given twice") }
            values[key] = value
        }
        guard let endpoint = values["endpoint"] else { throw EventHubsError(.configuration, "connection string: 'Endpoint' is missing") }
        (host, port) = try Self.parseEndpoint(endpoint)
        let name = values["sharedaccesskeyname"], key = values["sharedaccesskey"], signature = values["sharedaccesssignature"]
        switch (name, key, signature) {
        case (let name?, let key?, nil):
            guard !name.isEmpty, !key.isEmpty else { throw EventHubsError(.configuration, "connection string: 'SharedAccessKeyName' and 'SharedAccessKey' must not be empty") }
            credential = .sharedAccessKey(name: name, key: key)
        case (nil, nil, let signature?):
            guard signature.hasPrefix("SharedAccessSignature ") else {
                throw EventHubsError(.configuration, "connection string: 'SharedAccessSignature' must start with 'SharedAccessSignature '")
            }
            credential = .sharedAccessSignature(signature)
        case (_, _, .some):
            throw EventHubsError(.configuration, "connection string: give either 'SharedAccessSignature' or the key pair, not both")
        default:
            throw EventHubsError(.configuration, "connection string: 'SharedAccessKeyName' and 'SharedAccessKey' must be given together (or 'SharedAccessSignature')")
        }
        entityPath = values["entitypath"].flatMap { $0.isEmpty ? nil : $0 }
        switch values["usedevelopmentemulator"]?.lowercased() {
        case nil, "false": useDevelopmentEmulator = false
        case "true": useDevelopmentEmulator = true
        case let other?: throw EventHubsError(.configuration, "connection string: 'UseDevelopmentEmulator' is '\(other)', not true or false")
        }
    }

    static let knownKeys: Set<String> = ["endpoint", "sharedaccesskeyname", "sharedaccesskey", "sharedaccesssignature", "entitypath", "usedevelopmentemulator"]

    /// `KEY=...` with the value hidden when the key may hold a secret.
    /// An unknown key as the error may show it: only a plain word is repeated. `SharedAccessKey:abc=` (a `:` typed
    /// for `=`) makes everything before the key's own trailing `=` look like a key, and that holds the secret.
    private static func shownKey(_ key: Substring) -> String {
        let plain = key.count <= 40 && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        if plain { return "'\(key)'" }
        let hint = key.contains(":") ? "; it holds a ':' — was '=' meant?" : ""
        return "(not shown: it is not a plain word and may hold a secret\(hint))"
    }

    private static func redactedPart(_ part: Substring) -> String {
        part.lowercased().contains("key") || part.lowercased().contains("signature") ? "(a part naming a secret)" : String(part)
    }

    /// `sb://host[:port]/` (or a bare host) → host and port.
    public static func parseEndpoint(_ endpoint: String) throws(EventHubsError) -> (String, Int?) {
        var rest = Substring(endpoint)
        for scheme in ["sb://", "amqps://", "amqp://"] where rest.lowercased().hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            break
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard !rest.isEmpty else { throw EventHubsError(.configuration, "connection string: 'Endpoint' (\(endpoint)) has no host") }
        if let colon = rest.lastIndex(of: ":"), !rest.hasPrefix("[") || rest[..<colon].hasSuffix("]") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
                throw EventHubsError(.configuration, "connection string: 'Endpoint' (\(endpoint)) has an invalid port")
            }
            return (String(rest[..<colon]), port)
        }
        return (String(rest), nil)
    }

    /// `host` or `host:port`, as it appears in token audiences.
    public var authority: String { port.map { "\(host):\($0)" } ?? host }

    /// The port connected to: the given one, else AMQP's (5672 plain, for the emulator; 5671 with TLS).
    public var effectivePort: Int { port ?? (useDevelopmentEmulator ? 5672 : 5671) }

    /// `host:port` as connected to, for messages about the connection.
    public var address: String { "\(host):\(effectivePort)" }

    public var description: String {
        var parts = ["Endpoint=sb://\(authority)/"]
        switch credential {
        case .sharedAccessKey(let name, _): parts += ["SharedAccessKeyName=\(name)", "SharedAccessKey=(hidden)"]
        case .sharedAccessSignature: parts.append("SharedAccessSignature=(hidden)")
        }
        if let entityPath { parts.append("EntityPath=\(entityPath)") }
        if useDevelopmentEmulator { parts.append("UseDevelopmentEmulator=true") }
        return parts.joined(separator: ";")
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return s
    }
}
