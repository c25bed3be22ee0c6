import Foundation
import SluiceLoader

/// Paths shared by the host tests.
enum TestPaths {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    /// Where `swift build` put the first-party plugins (next to the test bundle).
    static let binDirectory: String = {
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("libSluiceSplitTransform.so").path)
        {
            dir = dir.deletingLastPathComponent()
        }
        return dir.path
    }()

    /// The first-party plugins.
    static let catalog = PluginCatalog.scan(directories: [binDirectory])

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-host-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
