import Foundation
import SluiceLoader
import SluiceTesting
import Testing

/// The catalog scan skips the libraries function manifests declare (`library:`), and only those: a `.so` whose name
/// merely appears in a manifest's text is still checked as a plugin.
struct FunctionManifestScanTests {
    static func refused(_ catalog: PluginCatalog) -> Set<String> {
        Set(catalog.refusals.map { ($0.path as NSString).lastPathComponent })
    }

    @Test func declaredLibrariesAreNotPluginsAndMentionedOnesAre() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let files = [
            "a.functions.yaml": "# see also libmentioned.so\nlibrary: 'liba.so'  \nfunctions: []\n",
            "b.functions.json": #"{"functions": [], "library": "libb.so"}"#,
            "c.functions.yml": "library: sub/../libc.so # relative to the manifest\nfunctions: []\n",
        ]
        for (name, text) in files { try text.write(toFile: directory.path + "/" + name, atomically: false, encoding: .utf8) }
        try FileManager.default.createDirectory(atPath: directory.path + "/sub", withIntermediateDirectories: false)
        for library in ["liba.so", "libb.so", "libc.so", "libmentioned.so"] {
            try "not an ELF file".write(toFile: directory.path + "/" + library, atomically: false, encoding: .utf8)
        }
        let catalog = PluginCatalog.scan(directories: [directory.path])
        #expect(Self.refused(catalog) == ["libmentioned.so"], "\(catalog.refusals)")
        #expect(Set(catalog.functionManifests.keys) == ["a", "b", "c"])
    }
}
