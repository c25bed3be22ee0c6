import Foundation
import Yams

/// Finds `${...}` in the scalars of a pipeline file.
///
/// The pipeline file does not substitute variables yet. Without this check a value such as
/// `directory: ${DATA_DIR}` passes `validate` and `run` then fails on the literal text (or, worse, creates a directory
/// named `${DATA_DIR}`), so every reference is reported up front, with its place in the file.
enum VariableReferences {
    /// One error for each scalar (value or key) that holds a `${` ... `}` reference.
    static func errors(in root: Node, file: String) -> [PipelineError] {
        var found: [PipelineError] = []
        visit(root, keyPath: "", file: file, into: &found)
        return found
    }

    private static func visit(_ node: Node, keyPath: String, file: String, into found: inout [PipelineError]) {
        switch node {
        case .scalar(let scalar):
            guard let reference = firstReference(in: scalar.string) else { return }
            found.append(
                PipelineError(
                    file: file,
                    line: node.mark?.line ?? 1,
                    column: node.mark?.column ?? 1,
                    keyPath: keyPath,
                    message: "'\(reference)' looks like a variable reference, but pipeline files do not substitute "
                        + "variables yet; write the value itself"
                )
            )
        case .mapping(let mapping):
            for (key, value) in mapping {
                let name = key.scalar?.string ?? "?"
                let path = keyPath.isEmpty ? name : "\(keyPath).\(name)"
                visit(key, keyPath: keyPath, file: file, into: &found)
                visit(value, keyPath: path, file: file, into: &found)
            }
        case .sequence(let sequence):
            for (index, element) in sequence.enumerated() {
                visit(element, keyPath: "\(keyPath)[\(index)]", file: file, into: &found)
            }
        case .alias:
            return
        }
    }

    /// The first `${...}` in `text` (up to its closing brace, or the rest of the text when it has none).
    static func firstReference(in text: String) -> Substring? {
        guard let start = text.range(of: "${") else { return nil }
        let end = text[start.upperBound...].firstIndex(of: "}").map { text.index(after: $0) } ?? text.endIndex
        return text[start.lowerBound..<end]
    }
}
