/// Hides credentials in text that is about to be shown: errors, log lines, progress.
///
/// Three nets, because none alone is enough. Values known to be secret (the options a plugin declares with
/// `ConfigOption.secret`) are replaced wherever they appear, however a message came to quote them. And text that
/// has the shape of a credential assignment — `SharedAccessKey=…`, `sig=…`, `AccountKey:…`, `password=…` (any case,
/// `=` or `:`) — loses its value even when nobody declared it: a user who types `:` for `=` in a connection string
/// turns the key into "an unknown key" that a parser would otherwise echo. And a word shaped like a generated key
/// (long, base64, mixed case and digits) is hidden wherever it stands, for the key pasted into the wrong option.
public enum SecretMask {
    /// What a hidden value is replaced with.
    public static let placeholder = "***"
    /// Names whose value is a credential; matched case-insensitively, followed by `=` or `:`.
    public static let credentialNames = [
        "sharedaccesskey", "sharedaccesssignature", "accountkey", "sig", "password", "passwd",
    ]
    /// Shorter values are not masked by value: "on" or "1" would mask half of every message.
    public static let shortestMaskedValue = 4

    /// `text` with every value in `secrets` replaced and every credential assignment's value hidden.
    public static func mask(_ text: String, hiding secrets: some Sequence<String> = [String]()) -> String {
        var result = text
        for secret in secrets where secret.utf8.count >= shortestMaskedValue {
            result = result.replacingEvery(secret, with: placeholder)
        }
        return maskKeyShapedWords(maskAssignments(result))
    }

    /// The shortest word taken for a key by its shape alone.
    public static let shortestKeyShapedWord = 32

    /// Hides words that look like keys wherever they stand (a key typed into the wrong option): at least 32
    /// characters of the base64 alphabet with upper case, lower case and digits. Paths, UUIDs, host names and
    /// identifiers break into shorter words at `.`, `-`, `_` or `:`, or hold a lower-case path component, so they
    /// stay readable.
    static func maskKeyShapedWords(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var start = 0
        func isKeyCharacter(_ s: Unicode.Scalar) -> Bool {
            ("A"..."Z").contains(s) || ("a"..."z").contains(s) || ("0"..."9").contains(s) || s == "+" || s == "/" || s == "="
        }
        while start < scalars.count {
            guard isKeyCharacter(scalars[start]) else {
                out.append(scalars[start])
                start += 1
                continue
            }
            var end = start
            while end < scalars.count, isKeyCharacter(scalars[end]) { end += 1 }
            let word = scalars[start..<end]
            let keyShaped = word.count >= shortestKeyShapedWord && word.contains { ("A"..."Z").contains($0) }
                && word.contains { ("a"..."z").contains($0) } && word.contains { ("0"..."9").contains($0) }
                && !isPathLike(word)
            if keyShaped { out.append(contentsOf: placeholder.unicodeScalars) } else { out.append(contentsOf: word) }
            start = end
        }
        return String(out)
    }

    /// Hides the value after `NAME=` or `NAME:` for each credential name, up to `;`, `&`, a quote, a comma, a bracket
    /// or white space.
    static func maskAssignments(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var index = 0
        let terminators: Set<Unicode.Scalar> = [";", "&", "'", "\"", ",", ")", "]", "}", " ", "\t", "\n", "\r"]
        while index < scalars.count {
            if let nameLength = credentialName(in: scalars, at: index) {
                var valueStart = index + nameLength + 1
                while valueStart < scalars.count, scalars[valueStart] == " " { valueStart += 1 }
                var valueEnd = valueStart
                while valueEnd < scalars.count, !terminators.contains(scalars[valueEnd]) { valueEnd += 1 }
                if valueEnd > valueStart {
                    out.append(contentsOf: scalars[index..<valueStart])
                    out.append(contentsOf: placeholder.unicodeScalars)
                    index = valueEnd
                    continue
                }
            }
            out.append(scalars[index])
            index += 1
        }
        return String(out)
    }

    /// True for a run of path components such as `5F60ABCDEF12/checkpoint/sources/lines/wal`: one component of three
    /// or more lower-case letters is a word, which a random base64 key almost never holds between two slashes.
    private static func isPathLike(_ word: ArraySlice<Unicode.Scalar>) -> Bool {
        word.split(separator: "/").contains { component in
            component.count >= 3 && component.allSatisfy { ("a"..."z").contains($0) }
        }
    }

    /// The length of a credential name at `index` that starts a word and is followed by `=` or `:`.
    private static func credentialName(in scalars: [Unicode.Scalar], at index: Int) -> Int? {
        if index > 0, isWordCharacter(scalars[index - 1]) { return nil }
        for name in credentialNames {
            let length = name.unicodeScalars.count
            guard index + length < scalars.count, scalars[index + length] == "=" || scalars[index + length] == ":"
            else { continue }
            if zip(name.unicodeScalars, scalars[index..<(index + length)]).allSatisfy({ $0 == lowercased($1) }) {
                return length
            }
        }
        return nil
    }

    private static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_"
    }

    private static func lowercased(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        ("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 32)! : scalar
    }
}

extension String {
    /// Every non-overlapping occurrence of `target` replaced, without Foundation (plugins link the SDK).
    fileprivate func replacingEvery(_ target: String, with replacement: String) -> String {
        let source = Array(utf8)
        let pattern = Array(target.utf8)
        guard !pattern.isEmpty, source.count >= pattern.count else { return self }
        var out: [UInt8] = []
        out.reserveCapacity(source.count)
        var index = 0
        var changed = false
        while index < source.count {
            if index + pattern.count <= source.count, source[index] == pattern[0],
                source[index..<(index + pattern.count)].elementsEqual(pattern)
            {
                out.append(contentsOf: replacement.utf8)
                index += pattern.count
                changed = true
            } else {
                out.append(source[index])
                index += 1
            }
        }
        return changed ? String(decoding: out, as: UTF8.self) : self
    }
}
