public import Foundation

/// Who may use the API: bearer tokens and HTTP basic users (Livy clients and HDInsight's examples send basic
/// authentication), read from files at the server's start. Secrets are compared in constant time and never logged.
public struct ServeCredentials: Sendable {
    private let tokens: [[UInt8]]
    private let users: [String: [UInt8]]

    /// A credentials file could not be used: which file, which line, what is wrong (never the secret itself).
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// - Parameters:
    ///   - tokenFile: one token per line (blank lines and `#` comments ignored).
    ///   - passwordFile: `user:password` per line.
    /// Both must be readable by their owner only (mode 0600 or stricter), as ssh insists for keys: a token that
    /// every local user can read protects nothing.
    public init(tokenFile: URL?, passwordFile: URL?) throws(Problem) {
        var tokens: [[UInt8]] = []
        var users: [String: [UInt8]] = [:]
        if let tokenFile {
            for (number, line) in try Self.lines(of: tokenFile) {
                guard line.count >= 16 else {
                    throw Problem(description: "\(tokenFile.path):\(number): a token must be at least 16 characters long")
                }
                tokens.append(Array(line.utf8))
            }
            if tokens.isEmpty { throw Problem(description: "\(tokenFile.path): no token in the file") }
        }
        if let passwordFile {
            for (number, line) in try Self.lines(of: passwordFile) {
                guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, line.index(after: colon) != line.endIndex else {
                    throw Problem(description: "\(passwordFile.path):\(number): expected user:password")
                }
                users[String(line[..<colon])] = Array(line[line.index(after: colon)...].utf8)
            }
            if users.isEmpty { throw Problem(description: "\(passwordFile.path): no user in the file") }
        }
        self.tokens = tokens
        self.users = users
    }

    /// Whether an `Authorization` header value names a known token or user with the right password.
    public func admits(_ authorization: String?) -> Bool {
        guard let authorization else { return false }
        if authorization.hasPrefix("Bearer ") {
            let offered = Array(authorization.dropFirst("Bearer ".count).utf8)
            // Every token is compared, so the time taken does not tell which one nearly matched.
            return tokens.reduce(into: false) { found, token in if Self.equal(token, offered) { found = true } }
        }
        if authorization.hasPrefix("Basic "), let decoded = Data(base64Encoded: String(authorization.dropFirst("Basic ".count))) {
            let text = String(decoding: decoded, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":"), let password = users[String(text[..<colon])] else { return false }
            return Self.equal(password, Array(text[text.index(after: colon)...].utf8))
        }
        return false
    }

    /// Constant-time for equal lengths: the loop never stops early.
    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    private static func lines(of file: URL) throws(Problem) -> [(Int, Substring)] {
        var status = stat()
        guard stat(file.path, &status) == 0 else { throw Problem(description: "\(file.path): cannot read it (\(String(cString: strerror(errno))))") }
        guard status.st_mode & 0o077 == 0 else {
            throw Problem(description: "\(file.path): other users may read it (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: file.path) else { throw Problem(description: "\(file.path): cannot read it") }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .map { ($0.offset + 1, $0.element.trimmingCharacters(in: .whitespaces)[...]) }
            .filter { !$0.1.isEmpty && !$0.1.hasPrefix("#") }
    }
}
