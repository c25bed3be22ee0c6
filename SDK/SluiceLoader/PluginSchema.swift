import Foundation

/// A plugin's configuration schema: the subset of JSON Schema the ABI defines (an object of typed properties).
public struct PluginSchema: Sendable {
    public struct Option: Sendable {
        public enum Kind: String, Sendable { case string, integer, number, boolean, array, object, any }
        public var name: String
        public var kind: Kind
        public var description: String
        /// The default as compact JSON text, or nil.
        public var defaultJSON: String?
        public var allowed: [String]
        public var required: Bool
        /// A path option (`"format": "path"`): relative values are resolved against the pipeline file's directory.
        public var isPath: Bool
        /// A credential (`"writeOnly": true`): its value is never shown and is masked in every message.
        public var isSecret: Bool = false
        /// A path the plugin writes under (`"format": "output-path"`): a relative value must stay inside the
        /// pipeline file's directory.
        public var isOutputPath: Bool = false
        /// JSON Schema `pattern`: what every string value must match.
        public var pattern: String?
    }

    public var options: [Option]
    /// False when the schema allows keys it does not list.
    public var closed: Bool

    /// The option called `name`.
    public func option(_ name: String) -> Option? { options.first { $0.name == name } }

    /// Parses a schema; throws a message describing what is wrong.
    public init(json: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]) else {
            throw SchemaError("configuration schema is not valid JSON")
        }
        guard let root = object as? [String: Any] else { throw SchemaError("configuration schema is not a JSON object") }
        if let type = root["type"], type as? String != "object" {
            throw SchemaError("configuration schema must have type \"object\"")
        }
        let properties = root["properties"] as? [String: Any] ?? [:]
        let required = Set(root["required"] as? [String] ?? [])
        closed = (root["additionalProperties"] as? Bool) == false
        var options: [Option] = []
        for (name, value) in properties {
            guard let property = value as? [String: Any] else {
                throw SchemaError("configuration schema property '\(name)' is not an object")
            }
            let kind = (property["type"] as? String).flatMap(Option.Kind.init(rawValue:)) ?? .any
            var defaultJSON: String?
            if let value = property["default"],
                let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys])
            {
                defaultJSON = String(decoding: data, as: UTF8.self)
            }
            options.append(
                Option(
                    name: name,
                    kind: kind,
                    description: property["description"] as? String ?? "",
                    defaultJSON: defaultJSON,
                    allowed: property["enum"] as? [String] ?? [],
                    required: required.contains(name),
                    isPath: ["path", "output-path"].contains(property["format"] as? String ?? ""),
                    isSecret: property["writeOnly"] as? Bool == true,
                    isOutputPath: property["format"] as? String == "output-path",
                    pattern: property["pattern"] as? String
                )
            )
        }
        // Required options first, then by name: a stable order for `plugins inspect`.
        self.options = options.sorted { ($0.required ? 0 : 1, $0.name) < ($1.required ? 0 : 1, $1.name) }
    }

    /// `configJSON` with every option that has a default and is missing from it added, set to the default as the
    /// schema writes it. The keys that are present keep their text exactly (no re-encoding of numbers); the defaults
    /// go first. Text that is not a JSON object is returned unchanged, for the plugin to refuse.
    public func fillingDefaults(_ configJSON: String) -> String {
        let missing = options.filter { $0.defaultJSON != nil }
        guard !missing.isEmpty,
            let open = configJSON.firstIndex(where: { !$0.isWhitespace }), configJSON[open] == "{",
            let object = try? JSONSerialization.jsonObject(with: Data(configJSON.utf8)) as? [String: Any]
        else { return configJSON }
        let added = missing.filter { object[$0.name] == nil }.compactMap { option -> String? in
            guard let key = try? JSONSerialization.data(withJSONObject: option.name, options: [.fragmentsAllowed]),
                let value = option.defaultJSON
            else { return nil }
            return String(decoding: key, as: UTF8.self) + ":" + value
        }
        guard !added.isEmpty else { return configJSON }
        let rest = configJSON[configJSON.index(after: open)...]
        return "{" + added.joined(separator: ",") + (object.isEmpty ? "" : ",") + rest
    }

    public struct SchemaError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
