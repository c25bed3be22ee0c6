import Crypto
import Foundation

/// Shared access signature tokens (`SharedAccessSignature sr=…&sig=…&se=…&skn=…`), made the way the official SDKs
/// make them and checked the way the service checks them.
///
/// The signed text is the URL-encoded audience, a newline, and the expiry in Unix seconds; the signature is the
/// Base64 of its HMAC-SHA256 under the UTF-8 bytes of the key as written (not Base64-decoded).
public struct SharedAccessSignature: Hashable, Sendable, CustomStringConvertible {
    /// The resource the token grants access to (`sb://host/hub` or `sb://host/hub/consumergroups/cg`).
    public var audience: String
    public var keyName: String
    /// Unix seconds.
    public var expiry: Int64
    /// Base64 HMAC-SHA256.
    public var signature: String

    /// Signs `audience` with `key`, valid until `expiry` (Unix seconds).
    public init(audience: String, keyName: String, key: String, expiry: Int64) {
        self.audience = audience
        self.keyName = keyName
        self.expiry = expiry
        signature = Self.sign(audience: audience, expiry: expiry, key: key)
    }

    static func sign(audience: String, expiry: Int64, key: String) -> String {
        let text = Self.formEncode(audience) + "\n" + String(expiry)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: Array(key.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// The token, fields in the order of the official SDKs: `sr`, `sig`, `se`, `skn`.
    public var token: String {
        "SharedAccessSignature sr=\(Self.formEncode(audience))&sig=\(Self.formEncode(signature))&se=\(expiry)&skn=\(Self.formEncode(keyName))"
    }

    /// Reads a token; the error names what is malformed, never the signature.
    public init(parsing token: String) throws(EventHubsError) {
        let prefix = "SharedAccessSignature "
        guard token.hasPrefix(prefix) else { throw EventHubsError(.authentication, "a shared access signature must start with '\(prefix)'") }
        var fields: [String: String] = [:]
        for pair in token.dropFirst(prefix.count).split(separator: "&") {
            guard let equals = pair.firstIndex(of: "=") else { throw EventHubsError(.authentication, "a shared access signature has a field without '='") }
            let key = String(pair[..<equals])
            guard let value = Self.formDecode(pair[pair.index(after: equals)...]) else {
                throw EventHubsError(.authentication, "a shared access signature's '\(key)' is not URL-encoded correctly")
            }
            fields[key] = value
        }
        guard let sr = fields["sr"], let sig = fields["sig"], let se = fields["se"], let skn = fields["skn"] else {
            throw EventHubsError(.authentication, "a shared access signature needs sr, sig, se and skn")
        }
        guard let expiry = Int64(se) else { throw EventHubsError(.authentication, "a shared access signature's expiry 'se' is not a number") }
        audience = sr
        keyName = skn
        self.expiry = expiry
        signature = sig
    }

    /// Whether the signature is `key`'s for this audience and expiry (compared in constant time).
    public func isSigned(with key: String) -> Bool {
        let expected = Array(Self.sign(audience: audience, expiry: expiry, key: key).utf8)
        let given = Array(signature.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Whether the token grants access to `resource`: its audience is the resource or a prefix of it at a `/`
    /// boundary (a namespace token covers its hubs; a hub token covers its consumer groups). Case-insensitive.
    public func covers(_ resource: String) -> Bool {
        let a = audience.lowercased().trimmingTrailingSlash(), r = resource.lowercased().trimmingTrailingSlash()
        return r == a || r.hasPrefix(a + "/")
    }

    public var description: String { "SharedAccessSignature(sr: \(audience), skn: \(keyName), se: \(expiry), sig: hidden)" }

    /// Python's `quote_plus` with nothing safe: letters, digits and `_.-~` stay, space becomes `+`, every other
    /// byte `%XX` in upper case.
    static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "): out += "+"
            default: out += "%" + String(byte >> 4, radix: 16).uppercased() + String(byte & 15, radix: 16).uppercased()
            }
        }
        return out
    }

    static func formDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let h = utf8.index(after: index)
                guard h < utf8.endIndex, utf8.index(after: h) < utf8.endIndex,
                    let value = UInt8(String(decoding: utf8[h...utf8.index(after: h)], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
                index = utf8.index(h, offsetBy: 2)
            } else {
                bytes.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index = utf8.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension String {
    func trimmingTrailingSlash() -> String { hasSuffix("/") ? String(dropLast()) : self }
}
