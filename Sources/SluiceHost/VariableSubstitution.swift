import Foundation
import Yams

/// Puts values from outside the pipeline file into its scalars, before anything reads them:
///
/// - `${NAME}`: the environment variable NAME; an error naming the variable and the line when it is not set;
/// - `${NAME:-default}`: the variable, or `default` when it is unset or empty (as the shells do);
/// - `${file:PATH}`: the contents of a file (one trailing newline dropped), PATH relative to the pipeline file —
///   for secrets mounted as files (Kubernetes, systemd credentials);
/// - `$${` is a literal `${`.
///
/// It works on the composed YAML tree, so every node keeps its line and column: errors later on point into the
/// file as written. A value that came from outside is remembered, so every message can mask it: an Event Hubs key
/// from the environment is never printed.
struct VariableSubstitution {
    /// The variables `${NAME}` reads (the CLI passes the process environment; the library reads none itself).
    let environment: [String: String]
    /// Where `${file:PATH}` resolves a relative PATH.
    let baseDirectory: String
    let file: String
    private(set) var errors: [PipelineError] = []
    /// Every value taken from a variable or a file.
    private(set) var substituted: [String] = []

    init(environment: [String: String], baseDirectory: String, file: String) {
        self.environment = environment
        self.baseDirectory = baseDirectory
        self.file = file
    }

    /// `node` with every reference replaced.
    mutating func apply(_ node: Node, keyPath: String = "") -> Node {
        switch node {
        case .scalar(var scalar):
            guard scalar.string.contains("${") else { return node }
            let whole = scalar.string.hasPrefix("${") && scalar.string.hasSuffix("}")
                && scalar.string.dropFirst(2).firstIndex(of: "}") == scalar.string.index(before: scalar.string.endIndex)
            if let text = expand(scalar.string, at: node.mark, keyPath: keyPath) { scalar.string = text }
            // `limit: "${LIMIT}"` is quoted only because YAML needs it around `{`: the value counts as written plainly,
            // so a number or a boolean from the environment is one.
            if whole { scalar.style = .plain }
            return .scalar(scalar)
        case .mapping(let mapping):
            let pairs = mapping.map { key, value -> (Node, Node) in
                let name = key.scalar?.string ?? "?"
                return (key, apply(value, keyPath: keyPath.isEmpty ? name : "\(keyPath).\(name)"))
            }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case .sequence(let sequence):
            let nodes = sequence.enumerated().map { apply($0.element, keyPath: "\(keyPath)[\($0.offset)]") }
            return .sequence(Node.Sequence(nodes, sequence.tag, sequence.style, sequence.mark))
        case .alias:
            return node
        }
    }

    /// `text` with its references replaced, or nil (and an error recorded) when one cannot be.
    private mutating func expand(_ text: String, at mark: Mark?, keyPath: String) -> String? {
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            let before = rest[..<start.lowerBound]
            if before.hasSuffix("$") {
                // `$${` stands for a literal `${`.
                out += before.dropLast() + "${"
                rest = rest[start.upperBound...]
                continue
            }
            out += before
            guard let close = rest[start.upperBound...].firstIndex(of: "}") else {
                fail(mark, keyPath, "'\(rest[start.lowerBound...].prefix(40))' has no closing '}' (write $${ for a literal ${)")
                return nil
            }
            let reference = String(rest[start.upperBound..<close])
            guard let value = resolve(reference, at: mark, keyPath: keyPath) else { return nil }
            out += value
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// The value of one reference (the text between `${` and `}`).
    private mutating func resolve(_ reference: String, at mark: Mark?, keyPath: String) -> String? {
        if reference.hasPrefix("file:") {
            let path = String(reference.dropFirst(5))
            guard !path.isEmpty else {
                fail(mark, keyPath, "'${file:}' names no file")
                return nil
            }
            let absolute = path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).path
            guard let data = FileManager.default.contents(atPath: absolute), var text = String(data: data, encoding: .utf8)
            else {
                let reason = FileManager.default.fileExists(atPath: absolute) ? "cannot be read as UTF-8 text" : "does not exist"
                fail(mark, keyPath, "'${file:\(path)}': \(absolute) \(reason)")
                return nil
            }
            if text.hasSuffix("\r\n") { text.removeLast(2) } else if text.hasSuffix("\n") { text.removeLast() }
            substituted.append(text)
            return text
        }
        let name: Substring
        var fallback: Substring?
        if let separator = reference.range(of: ":-") {
            name = reference[..<separator.lowerBound]
            fallback = reference[separator.upperBound...]
        } else {
            name = Substring(reference)
        }
        guard let first = name.first, first == "_" || (first.isASCII && first.isLetter),
            name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
        else {
            fail(
                mark, keyPath,
                "'${\(reference)}' is not a variable reference: use ${NAME}, ${NAME:-default} or ${file:PATH} "
                    + "(write $${ for a literal ${)"
            )
            return nil
        }
        if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
            substituted.append(value)
            return value
        }
        if let fallback { return String(fallback) }
        fail(mark, keyPath, "environment variable '\(name)' is not set (give a default with ${\(name):-VALUE})")
        return nil
    }

    private mutating func fail(_ mark: Mark?, _ keyPath: String, _ message: String) {
        errors.append(
            PipelineError(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, keyPath: keyPath, message: message)
        )
    }
}
