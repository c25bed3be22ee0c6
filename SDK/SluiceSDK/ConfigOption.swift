/// One configuration option of a plugin: rendered into the descriptor's JSON Schema, shown by
/// `sluice plugins inspect`, and used to fill in defaults before the configuration is decoded.
public struct ConfigOption: Sendable {
    public enum Kind: String, Sendable {
        case string, integer, number, boolean
        case stringArray = "array"
    }

    public var name: String
    public var kind: Kind
    public var description: String
    public var required: Bool
    /// The default as a JSON literal (`"\"latest\""`, `"10"`, `"true"`), or nil.
    public var defaultJSON: String?
    /// Allowed values for a string option.
    public var allowed: [String]
    /// A string option that names a file or directory: the host resolves a relative value against the directory
    /// of the pipeline file (JSON Schema `"format": "path"`).
    public var isPath = false
    /// A path option the plugin writes under (`"format": "output-path"`): besides being resolved like any path, a
    /// relative value may not leave the pipeline file's directory (`../x`); an absolute one may go anywhere.
    public var isOutputPath = false
    /// A regular expression (JSON Schema `pattern`, ECMA-262 syntax as far as the host's engine follows it) every
    /// value of a string option must match; the host refuses others when it checks the pipeline file.
    public var pattern: String?
    /// A string option holding a credential (a key, a connection string): the host never shows its value, and masks
    /// it in every message, the plugin's own included (JSON Schema `"writeOnly": true`).
    public var isSecret = false

    public init(
        _ name: String,
        _ kind: Kind,
        description: String,
        required: Bool = false,
        defaultJSON: String? = nil,
        allowed: [String] = []
    ) {
        self.name = name
        self.kind = kind
        self.description = description
        self.required = required
        self.defaultJSON = defaultJSON
        self.allowed = allowed
    }

    /// A string option.
    public static func string(
        _ name: String,
        description: String,
        required: Bool = false,
        default value: String? = nil,
        allowed: [String] = [],
        pattern: String? = nil
    ) -> ConfigOption {
        var option = ConfigOption(
            name,
            .string,
            description: description,
            required: required,
            defaultJSON: value.map(jsonQuoted),
            allowed: allowed
        )
        option.pattern = pattern
        return option
    }

    /// A string option holding a file system path, resolved by the host against the pipeline file's directory.
    public static func path(_ name: String, description: String, required: Bool = false, default value: String? = nil)
        -> ConfigOption
    {
        var option = string(name, description: description, required: required, default: value)
        option.isPath = true
        return option
    }

    /// A path the plugin writes to: resolved like `path`, and a relative value must stay inside the pipeline
    /// file's directory (an absolute value is the way to write elsewhere).
    public static func outputPath(
        _ name: String, description: String, required: Bool = false, default value: String? = nil
    ) -> ConfigOption {
        var option = path(name, description: description, required: required, default: value)
        option.isOutputPath = true
        return option
    }

    /// A string option holding a credential: never shown by the host, masked in every message that passes it.
    public static func secret(_ name: String, description: String, required: Bool = false) -> ConfigOption {
        var option = string(name, description: description, required: required)
        option.isSecret = true
        return option
    }

    /// An integer option.
    public static func integer(_ name: String, description: String, required: Bool = false, default value: Int? = nil)
        -> ConfigOption
    {
        ConfigOption(name, .integer, description: description, required: required, defaultJSON: value.map { String($0) })
    }

    /// A number option.
    public static func number(_ name: String, description: String, required: Bool = false, default value: Double? = nil)
        -> ConfigOption
    {
        ConfigOption(name, .number, description: description, required: required, defaultJSON: value.map { "\($0)" })
    }

    /// A boolean option.
    public static func boolean(_ name: String, description: String, default value: Bool? = nil) -> ConfigOption {
        ConfigOption(name, .boolean, description: description, defaultJSON: value.map { $0 ? "true" : "false" })
    }

    /// A list-of-strings option.
    public static func strings(_ name: String, description: String, default value: [String]? = nil) -> ConfigOption {
        ConfigOption(
            name,
            .stringArray,
            description: description,
            defaultJSON: value.map { "[" + $0.map(jsonQuoted).joined(separator: ",") + "]" }
        )
    }
}

extension PluginInfo {
    /// The JSON Schema of the configuration, as the descriptor carries it.
    public var configSchemaJSON: String {
        var properties: [String] = []
        for option in options {
            var fields = ["\"type\":\(jsonQuoted(option.kind.rawValue))"]
            if option.kind == .stringArray { fields.append("\"items\":{\"type\":\"string\"}") }
            if option.isPath { fields.append(option.isOutputPath ? "\"format\":\"output-path\"" : "\"format\":\"path\"") }
            if let pattern = option.pattern { fields.append("\"pattern\":\(jsonQuoted(pattern))") }
            if option.isSecret { fields.append("\"writeOnly\":true") }
            fields.append("\"description\":\(jsonQuoted(option.description))")
            if let value = option.defaultJSON { fields.append("\"default\":\(value)") }
            if !option.allowed.isEmpty {
                fields.append("\"enum\":[" + option.allowed.map(jsonQuoted).joined(separator: ",") + "]")
            }
            properties.append("\(jsonQuoted(option.name)):{" + fields.joined(separator: ",") + "}")
        }
        let required = options.filter(\.required).map { jsonQuoted($0.name) }
        return "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
            + properties.joined(separator: ",") + "},\"required\":[" + required.joined(separator: ",") + "]}"
    }
}

/// `text` as a JSON string literal.
public func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
