import Yams

/// `--set KEY.PATH=VALUE` (Spark's `--conf`): a value replaced or added in the pipeline file's tree before it is read,
/// so it is checked exactly like a value written in the file.
///
/// KEY.PATH walks mappings by key. Plugin options may hold dots themselves (`eventhubs.policykey`), so at each level
/// the longest run of segments that names an existing key wins, and under a `config` mapping a new key takes the
/// rest of the path whole. VALUE is taken as written (`500ms`, `true`, `*.log`), or as a YAML flow list or mapping
/// when it starts with `[` or `{` (`[a, b]`, `{k: v}`).
struct PipelineOverrides {
    let file: String
    private(set) var errors: [PipelineError] = []

    init(file: String) { self.file = file }

    /// `root` with every `KEY.PATH=VALUE` of `overrides` applied, in order.
    mutating func apply(_ overrides: [String], to root: Node) -> Node {
        var root = root
        for override in overrides {
            guard let equals = override.firstIndex(of: "="), equals != override.startIndex else {
                fail(root, override, "--set '\(override)' is not KEY.PATH=VALUE (for example --set batch_interval=500ms)")
                continue
            }
            let path = override[..<equals].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else {
                fail(root, override, "--set '\(override[..<equals])' has an empty key")
                continue
            }
            let text = String(override[override.index(after: equals)...])
            var value = Node.scalar(.init(text, .implicit, .plain))
            if text.hasPrefix("[") || text.hasPrefix("{") {
                // A list or a mapping is written in YAML's flow style; anything else is taken as it stands (`*.log`).
                do {
                    value = try Yams.compose(yaml: text) ?? value
                } catch {
                    fail(root, String(override[..<equals]), "--set value '\(text)' is not a YAML list or mapping")
                    continue
                }
            }
            if let updated = set(path[...], to: value, in: root, parentKey: nil, fullPath: String(override[..<equals])) {
                root = updated
            }
        }
        return root
    }

    /// `node` (a mapping) with `path` set to `value`, or nil (and an error recorded).
    private mutating func set(_ path: ArraySlice<String>, to value: Node, in node: Node, parentKey: String?, fullPath: String)
        -> Node?
    {
        guard case .mapping(let mapping) = node else {
            fail(node, fullPath, "--set \(fullPath): '\(parentKey ?? "the file")' is not a mapping")
            return nil
        }
        var pairs = mapping.map { ($0.key, $0.value) }
        // The longest run of segments that names an existing key.
        for length in stride(from: path.count, through: 1, by: -1) {
            let key = path.prefix(length).joined(separator: ".")
            guard let index = pairs.firstIndex(where: { $0.0.scalar?.string == key }) else { continue }
            if length == path.count {
                pairs[index].1 = located(value, at: pairs[index].1.mark)
            } else {
                guard let child = set(path.dropFirst(length), to: value, in: pairs[index].1, parentKey: key, fullPath: fullPath)
                else { return nil }
                pairs[index].1 = child
            }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        }
        // A new key: under `config` the whole rest (option names may hold dots), elsewhere one segment at a time.
        let takesRest = parentKey == "config" || path.count == 1
        let key = takesRest ? path.joined(separator: ".") : path.first!
        let keyNode = Node.scalar(.init(key, .implicit, .plain, mapping.mark))
        let child: Node
        if takesRest {
            child = located(value, at: mapping.mark)
        } else {
            let empty = Node.mapping(Node.Mapping([], .implicit, .block, mapping.mark))
            guard let made = set(path.dropFirst(), to: value, in: empty, parentKey: key, fullPath: fullPath) else { return nil }
            child = made
        }
        pairs.append((keyNode, child))
        return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
    }

    /// A scalar value placed where the value it replaces stood, so errors about it point at that line.
    private func located(_ value: Node, at mark: Mark?) -> Node {
        guard case .scalar(var scalar) = value else { return value }
        scalar.mark = mark
        return .scalar(scalar)
    }

    private mutating func fail(_ node: Node, _ keyPath: String, _ message: String) {
        errors.append(
            PipelineError(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, keyPath: keyPath, message: message)
        )
    }
}
