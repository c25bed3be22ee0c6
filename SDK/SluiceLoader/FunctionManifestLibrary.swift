import Foundation

/// Which shared library a function-library manifest (`NAME.functions.yaml`, `.yml` or `.json`) declares: the value of
/// its top-level `library` key, resolved against the manifest's directory. The catalog scan uses it so that a
/// function library beside the plugins is not taken for a plugin (it has no entry symbol and would be refused).
///
/// The loader reads only that key, without a YAML library (the SDK package depends on nothing): a JSON manifest is
/// parsed whole; a YAML one is read for a block-style top-level `library:` line (plain, single- or double-quoted
/// scalar), which is how manifests are written (docs/functions.md). A manifest this cannot read names no library: its
/// `.so` is then checked as a plugin and refused with a warning, and the host's full parser (SluiceFunctions) still
/// loads it as a function library.
enum FunctionManifestLibrary {
    /// The absolute path of the library `manifest` declares, or nil.
    static func path(manifest: String) -> String? {
        guard let data = FileManager.default.contents(atPath: manifest) else { return nil }
        let declared = manifest.hasSuffix(".json") ? fromJSON(data) : fromJSON(data) ?? fromYAML(data)
        guard let declared, !declared.isEmpty else { return nil }
        if declared.hasPrefix("/") { return declared }
        let directory = (manifest as NSString).deletingLastPathComponent
        return ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(declared)
    }

    /// `library` of a JSON object.
    static func fromJSON(_ data: Data) -> String? {
        ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["library"] as? String
    }

    /// `library` of a block-style YAML mapping: the line `library: VALUE` at column 0, a comment after a plain value
    /// ignored.
    static func fromYAML(_ data: Data) -> String? {
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) where line.hasPrefix("library:") {
            let value = line.dropFirst("library:".count).trimmingCharacters(in: .whitespaces)
            if let quote = value.first, quote == "\"" || quote == "'" {
                let body = value.dropFirst()
                guard let end = body.firstIndex(of: quote) else { return nil }
                return String(body[..<end])
            }
            let plain = value.range(of: " #").map { String(value[..<$0.lowerBound]) } ?? value
            return plain.trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
