import Foundation
import SluiceLoader
import SluiceTesting
import Testing

/// The ABI conformance suite: every first-party plugin, as built, passes the test kit's checker.
struct ConformanceTests {
    static func config(for plugin: String, in directory: URL) throws -> String {
        switch plugin {
        case "file-watch":
            try "first\nsecond\n".write(to: directory.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
            return #"{"directory":"\#(directory.path)","start":"earliest"}"#
        case "socket": return #"{"port":9,"reconnect_initial_ms":1000}"#
        case "files": return #"{"prefix":"\#(directory.path)/out/part"}"#
        case "console": return #"{"header":false,"limit":0}"#
        default: return "{}"
        }
    }

    @Test(arguments: ["file-watch", "socket", "split", "noop", "console", "files"])
    func firstPartyPluginConforms(name: String) throws {
        let plugin = try #require(TestPaths.catalog.plugins[name], "plugin \(name) was not built")
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let report = PluginConformance.check(path: plugin.path, config: try Self.config(for: name, in: directory))
        #expect(report.passed, "\(report)")
        #expect(report.checks.count >= 5)
    }

    @Test func theCheckerCatchesARefusedFile() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try PluginLoaderTests.compile("refused.c", into: directory, as: "abi", flags: ["-DABI=0x00020000u"])
        let report = PluginConformance.check(path: path)
        #expect(!report.passed)
        #expect(report.failures.first?.detail.contains("ABI 2.0") == true)
    }
}
