import Foundation
import SluiceLoader
import CSluice
import SluiceSDK
import Synchronization
import Testing

/// Every refusal the loader makes: one line naming the file and the cause, and the good plugins still load.
@Suite(.serialized)
struct PluginLoaderTests {
    /// Fixtures already compiled in this test process, by fixture and flags: gcc runs once for each, and every
    /// caller gets its own copy (a file of its own, so the loader treats it as a library of its own).
    private static let compiled = Mutex<[String: String]>([:])

    /// Compiles a fixture C file into `directory/name.so` with gcc.
    static func compile(_ fixture: String, into directory: URL, as name: String, flags: [String] = []) throws -> String {
        let output = directory.appendingPathComponent("\(name).so").path
        let original = try compiled.withLock { cache throws -> String in
            let key = ([fixture] + flags).joined(separator: "\u{0}")
            if let path = cache[key] { return path }
            let path = try TestPaths.temporaryDirectory().appendingPathComponent("\(name).so").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-fvisibility=hidden",
                "-I", TestPaths.repoRoot.appendingPathComponent("SDK/CSluice/include").path,
                "-o", path, TestPaths.fixtures.appendingPathComponent(fixture).path,
            ] + flags
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0, "gcc failed on \(fixture)")
            cache[key] = path
            return path
        }
        try FileManager.default.copyItem(atPath: original, toPath: output)
        return output
    }

    /// A plugin directory with one good C plugin, one good Swift plugin, and one file per refusal.
    static func makeDirectory() throws -> (URL, [String: String]) {
        let directory = try TestPaths.temporaryDirectory()
        var paths: [String: String] = [:]
        paths["good"] = try compile("good_c_transform.c", into: directory, as: "good")
        paths["no-entry"] = try compile("no_entry.c", into: directory, as: "no-entry")
        // refused.c, built once per refusal with the one thing that is wrong.
        for (name, flags) in [
            ("abi-major", [#"-DNAME="future-plugin""#, "-DABI=0x00020000u"]),
            ("too-small", [#"-DNAME="tiny-plugin""#, "-DSTRUCT_SIZE=16"]),
            ("old-toolchain", [#"-DNAME="old-swift""#, #"-DBUILD_INFO="toolchain=swift-5.9;sdk=0.1.0""#]),
            ("old-sdk", [#"-DNAME="future-sdk""#, #"-DBUILD_INFO="toolchain=c;sdk=9.0.0""#]),
            ("bad-schema", [#"-DNAME="bad-schema""#, #"-DSCHEMA="{not json""#]),
            ("refuses-host", [#"-DNAME="refuser""#, "-DREFUSE_HOST"]),
            ("null-name", ["-DNO_NAME"]),
            ("bad-name", [#"-DNAME="Bad_Name""#]),
            ("unknown-kind", [#"-DNAME="odd-kind""#, "-DKIND=99"]),
            ("no-transform", [#"-DNAME="no-transform""#, "-DNO_TRANSFORM"]),
        ] {
            paths[name] = try compile("refused.c", into: directory, as: name, flags: flags)
        }
        let broken = directory.appendingPathComponent("broken.so").path
        try FileManager.default.copyItem(atPath: TestPaths.fixtures.appendingPathComponent("not_a_plugin.txt").path, toPath: broken)
        paths["broken"] = broken
        // The same Swift plugin twice under two file names: the second is a duplicate name.
        let split = TestPaths.binDirectory + "/libSluiceSplitTransform.so"
        for name in ["a-split", "b-split"] {
            let path = directory.appendingPathComponent("\(name).so").path
            try FileManager.default.copyItem(atPath: split, toPath: path)
            paths[name] = path
        }
        return (directory, paths)
    }

    @Test func refusesEachBadFileWithOneLineAndLoadsTheRest() throws {
        let (directory, paths) = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let catalog = PluginCatalog.scan(directories: [directory.path])

        // The good ones load.
        #expect(catalog.plugins["c-identity"]?.path == paths["good"])
        #expect(catalog.plugins["c-identity"]?.kind == .transform)
        #expect(catalog.plugins["split"]?.path == paths["a-split"])

        let expected: [(String, PluginLoadError.Code, String)] = [
            ("broken", .notSharedObject, "not a loadable shared object: not an ELF file"),
            ("no-entry", .missingEntry, "no entry symbol 'sluice_plugin_entry_v1'"),
            ("abi-major", .abiMajorMismatch, "built for plugin ABI 2.0, this host speaks ABI 1.x"),
            ("too-small", .descriptorTooSmall, "descriptor is 16 bytes"),
            ("old-toolchain", .toolchainMismatch, "built with swift-5.9"),
            ("old-sdk", .sdkMismatch, "Sluice SDK 9.0.0"),
            ("bad-schema", .invalidSchema, "configuration schema is not valid JSON"),
            ("refuses-host", .refusedHost, "refused this host's ABI \(SLUICE_ABI_MAJOR).\(SLUICE_ABI_MINOR)"),
            ("null-name", .invalidDescriptor, "descriptor has no name"),
            ("bad-name", .invalidDescriptor, "plugin name 'Bad_Name' is invalid: use lower-case letters, digits and '-'"),
            ("unknown-kind", .invalidDescriptor, "plugin 'odd-kind' has unknown kind 99"),
            ("no-transform", .invalidDescriptor, "transform plugin 'no-transform' has no 'transform' function"),
            ("b-split", .duplicateName, "plugin name 'split' is already provided by \(paths["a-split"]!)"),
        ]
        for (name, code, cause) in expected {
            let path = try #require(paths[name])
            let refusal = try #require(catalog.refusals.first { $0.path == path }, "\(name) was not refused")
            #expect(refusal.code == code, "\(refusal)")
            #expect(refusal.cause.contains(cause), "\(refusal)")
            #expect(refusal.description.hasPrefix("refused plugin \(path): "))
            #expect(!refusal.description.contains("\n"), "one line")
        }
        #expect(catalog.refusals.count == expected.count)
        #expect(catalog.plugins.count == 2)
    }

    @Test func aRefusedFileDoesNotBreakLaterLoads() throws {
        // Loading after failures (which must never dlclose a Swift image) still works, and loading twice is stable.
        let (directory, _) = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = PluginCatalog.scan(directories: [directory.path])
        let second = PluginCatalog.scan(directories: [directory.path, TestPaths.binDirectory])
        #expect(second.plugins["c-identity"]?.path == first.plugins["c-identity"]?.path)
        #expect(second.plugins["split"]?.path == first.plugins["split"]?.path, "earlier directories win")
        #expect(second.plugins["noop"] != nil, "the later directory still contributes")
    }

    @Test func searchPathOrder() {
        let path = PluginCatalog.searchPath(explicit: ["/a", "/b"], environment: ["SLUICE_PLUGIN_PATH": "/c::/d"])
        #expect(Array(path.prefix(4)) == ["/a", "/b", "/c", "/d"])
        #expect(path.count == 5, "then the executable's directory")
    }

    @Test func aGoodCPluginRunsThroughTheHostAdapters() throws {
        let (directory, paths) = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plugin = try PluginLoader.load(path: try #require(paths["good"]))
        let instance = try PluginInstance(plugin: plugin, name: "identity", configJSON: "{}") { _, _, _ in }
        var builder = BatchBuilder()
        for word in ["alpha", "", "gamma"] { builder.append(word) }
        let output = try instance.transform(OwnedBatch(builder))
        #expect((0..<output.count).map { output.view.valueString(at: $0) } == ["alpha", "", "gamma"])
    }
}
