import Yams

/// Bounds how large a pipeline file may be once its aliases are expanded.
///
/// An alias (`*name`) stands for the whole node it names, so a few lines can describe billions of nodes ("billion
/// laughs"). Yams shares the aliased node, which keeps composing cheap, but every later walk over the document (key
/// checks, plugin configuration turned into JSON) visits it once per use. Counting nodes, aliases expanded, and
/// stopping at the limit keeps that count itself bounded by the limit.
enum YAMLExpansionLimit {
    /// More than any real pipeline needs (a pipeline with a thousand stages has a few thousand nodes).
    static let maximumNodes = 1_000_000
    /// The largest pipeline file read, in bytes.
    static let maximumFileBytes = 16 << 20

    /// True when `root` expands to more than `limit` nodes.
    static func exceeded(by root: Node, limit: Int = maximumNodes) -> Bool {
        var remaining = limit
        return !visit(root, remaining: &remaining)
    }

    /// Counts `node` and what it holds against `remaining`; false as soon as the budget is spent.
    private static func visit(_ node: Node, remaining: inout Int) -> Bool {
        remaining -= 1
        guard remaining >= 0 else { return false }
        switch node {
        case .scalar, .alias:
            return true
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard visit(key, remaining: &remaining), visit(value, remaining: &remaining) else { return false }
            }
            return true
        case .sequence(let sequence):
            for element in sequence {
                guard visit(element, remaining: &remaining) else { return false }
            }
            return true
        }
    }
}
