import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `sluice` checks plugin files before it opens them: a library that is not a plugin never runs, and a file others
/// could have written is refused unless `--allow-insecure-plugins`.
@Suite(.timeLimit(.minutes(3)))
struct PluginFileSafetyTests {
    static func compile(_ fixture: String, to output: URL, flags: [String] = []) throws {
        try CFixtures.sharedObject(fixture, to: output, flags: flags)
    }

    /// A temporary directory with an empty `plugins` directory in it (both 0755, under the sticky /tmp).
    static func makePluginDirectory() throws -> (work: URL, plugins: URL) {
        let work = try Support.makeTemporaryDirectory()
        let plugins = work.appendingPathComponent("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: false)
        return (work, plugins)
    }

    @Test func listAndValidateNeverOpenALibraryThatIsNotAPlugin() throws {
        let (work, plugins) = try Self.makePluginDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let marker = work.appendingPathComponent("constructor-ran")
        let library = plugins.appendingPathComponent("libhelper.so")
        try Self.compile("constructor_marker.c", to: library, flags: [#"-DMARKER="\#(marker.path)""#])

        let list = try Support.sluice(["plugins", "list", "--plugin-dir", plugins.path])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("split"), "the other plugins still load")
        #expect(list.stderr.contains(
            "sluice: warning: refused plugin \(library.path): no entry symbol 'sluice_plugin_entry_v1' in its dynamic symbol table"
        ), "\(list.stderr)")

        let pipeline = Support.repoRoot.appendingPathComponent("examples/wordcount/pipeline.yaml").path
        let validate = try Support.sluice(["validate", pipeline, "--plugin-dir", plugins.path])
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(validate.stderr.contains("refused plugin \(library.path)"))

        #expect(!FileManager.default.fileExists(atPath: marker.path), "the library's constructor ran")
    }

    @Test func insecureFilesAreRefusedUnlessAllowed() throws {
        let (work, plugins) = try Self.makePluginDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let plugin = plugins.appendingPathComponent("libgood.so")
        try Self.compile("good_c_transform.c", to: plugin)

        let secure = try Support.sluice(["plugins", "list", "--plugin-dir", plugins.path])
        #expect(secure.stdout.contains("c-identity"), "\(secure.stderr)")

        chmod(plugin.path, 0o664)
        let refused = try Support.sluice(["plugins", "list", "--plugin-dir", plugins.path])
        #expect(refused.status == 0)
        #expect(!refused.stdout.contains("c-identity"))
        #expect(refused.stderr.contains(
            "sluice: warning: refused plugin \(plugin.path): insecure: file is writable by group (mode 664)"
        ), "\(refused.stderr)")

        let allowed = try Support.sluice(["plugins", "list", "--allow-insecure-plugins", "--plugin-dir", plugins.path])
        #expect(allowed.stdout.contains("c-identity"))
        #expect(allowed.stderr.contains(
            "sluice: warning: loaded insecure plugin \(plugin.path) because of --allow-insecure-plugins: "
                + "file is writable by group (mode 664)"
        ), "\(allowed.stderr)")

        chmod(plugin.path, 0o755)
        chmod(plugins.path, 0o777)
        let directory = try Support.sluice(["plugins", "inspect", "c-identity", "--plugin-dir", plugins.path])
        #expect(directory.status == 2)
        #expect(directory.stderr.contains("directory \(plugins.path) is writable by group and others (mode 777)"))
        let inspect = try Support.sluice(["plugins", "inspect", "c-identity", "--allow-insecure-plugins", "--plugin-dir", plugins.path])
        #expect(inspect.status == 0, "\(inspect.stderr)")

        // `plugins check` applies the same rule and the same override.
        let check = try Support.sluice(["plugins", "check", plugin.path])
        #expect(check.status == 1)
        #expect(check.stdout.contains("[FAIL] loads: insecure: directory \(plugins.path) is writable"), "\(check.stdout)")
        let allowedCheck = try Support.sluice(["plugins", "check", "--allow-insecure-plugins", plugin.path])
        // (This fixture accepts unknown options, a check of its own that fails; loading is what matters here.)
        #expect(allowedCheck.stdout.contains("[ok] loads: c-identity"), "\(allowedCheck.stdout)")
        #expect(allowedCheck.stdout.contains("because of --allow-insecure-plugins"), "\(allowedCheck.stdout)")
    }
}
