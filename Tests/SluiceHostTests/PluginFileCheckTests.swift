import Foundation
import PropertyBased
@testable import SluiceLoader
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What the loader checks before it opens a file: nothing of a file runs unless its dynamic symbol table exports
/// the entry function, and no file others could have written is opened unless allowed.
@Suite(.serialized)
struct PluginFileCheckTests {
    static let isRoot = geteuid() == 0

    /// A plugin directory (0755 under the sticky, root-owned temporary directory) with the good C plugin.
    static func directoryWithGoodPlugin() throws -> (directory: URL, plugin: String) {
        let directory = try TestPaths.temporaryDirectory()
        return (directory, try PluginLoaderTests.compile("good_c_transform.c", into: directory, as: "good"))
    }

    static func refusal(for path: String, in catalog: PluginCatalog) throws -> PluginLoadError {
        try #require(catalog.refusals.first { $0.path == path }, "\(path) was not refused: \(catalog.refusals)")
    }

    // MARK: Nothing runs before it is known to be a plugin

    @Test func aLibraryThatIsNotAPluginIsNeverOpened() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var markers: [String] = []
        for variant in ["plain", "ENTRY_UNDEFINED", "ENTRY_AS_DATA"] {
            let marker = directory.appendingPathComponent("\(variant).opened").path
            markers.append(marker)
            let flags = [#"-DMARKER="\#(marker)""#] + (variant == "plain" ? [] : ["-D\(variant)"])
            let path = try PluginLoaderTests.compile("constructor_marker.c", into: directory, as: "lib\(variant)", flags: flags)
            #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: path) }
        }
        let catalog = PluginCatalog.scan(directories: [directory.path])
        #expect(catalog.refusals.count == 3)
        for refusal in catalog.refusals {
            #expect(refusal.code == .missingEntry, "\(refusal)")
            #expect(refusal.cause.contains("no entry symbol 'sluice_plugin_entry_v1' in its dynamic symbol table"))
        }
        for marker in markers {
            #expect(!FileManager.default.fileExists(atPath: marker), "a constructor ran: \(marker)")
        }
    }

    @Test func truncatedFilesAreRefusedBeforeOpening() throws {
        let (directory, plugin) = try Self.directoryWithGoodPlugin()
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: plugin))
        let cut = directory.appendingPathComponent("cut.so")
        for length in [0, 1, 4, 63, 64, 65, 200, 1000, bytes.count / 2, bytes.count - 64, bytes.count - 1] {
            try bytes.prefix(length).write(to: cut)
            let error = #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: cut.path) }
            #expect(error?.code == .notSharedObject, "\(length): \(String(describing: error))")
            #expect(error?.description.hasPrefix("refused plugin \(cut.path): not a loadable shared object: ") == true)
            #expect(error?.description.contains("\n") == false)
        }
        try bytes.prefix(10).write(to: cut)
        let short = #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: cut.path) }
        #expect(short?.cause.contains("not an ELF file (10 bytes, shorter than an ELF header)") == true)
        try bytes.prefix(bytes.count - 1).write(to: cut)
        let tail = #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: cut.path) }
        #expect(tail?.cause.contains("section header table") == true && tail?.cause.contains("runs past the end") == true)
    }

    @Test func otherClassesAndMachinesAreRefusedByName() throws {
        let (directory, plugin) = try Self.directoryWithGoodPlugin()
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: plugin))
        let patched = directory.appendingPathComponent("patched.so")
        for (offset, value, expected) in [
            (4, [UInt8(1)], "ELF class 32-bit is not supported"),
            (5, [UInt8(2)], "big-endian is not supported"),
            (16, [UInt8(2), 0], "ELF type executable is not a shared object"),
            (18, ELFFile.hostMachine == 62 ? [UInt8(183), 0] : [UInt8(62), 0], "built for "),
        ] {
            var copy = bytes
            copy.replaceSubrange(offset..<(offset + value.count), with: value)
            try copy.write(to: patched)
            let error = #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: patched.path) }
            #expect(error?.cause.contains(expected) == true, "\(String(describing: error))")
        }
    }

    /// Thousands of seeded mutations of a real plugin's headers and tables: the check (which never opens the
    /// file) must refuse or accept, never crash or hang, and a refusal is one line.
    @Test func mutatedFilesNeverCrashTheCheck() throws {
        let (directory, plugin) = try Self.directoryWithGoodPlugin()
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: plugin)))
        let sectionTable = Int(original.u64(40))
        let mutated = directory.appendingPathComponent("mutated.so").path
        var rng = Xoshiro(seed: (0xE1F, 7, 11, 13))
        var refused = 0
        for round in 0..<3000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                // The ELF header, the section header table, or anywhere (the tables sit near the start).
                let region = Int.random(in: 0..<3, using: &rng)
                let at =
                    region == 0
                    ? Int.random(in: 0..<64, using: &rng)
                    : region == 1 ? Int.random(in: sectionTable..<bytes.count, using: &rng) : Int.random(in: 0..<bytes.count, using: &rng)
                let width = [1, 2, 4, 8].randomElement(using: &rng)!
                let value = [UInt64.max, 0, UInt64(bytes.count), UInt64.random(in: 0...UInt64.max, using: &rng)]
                    .randomElement(using: &rng)!
                for i in 0..<width where at + i < bytes.count { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
            }
            if round % 10 == 0 { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng)) }
            try Data(bytes).write(to: URL(fileURLWithPath: mutated))
            do {
                _ = try PluginLoader.checkBeforeOpening(mutated, allowInsecure: false, searchDirectory: nil)
            } catch {
                refused += 1
                #expect(!error.description.contains("\n"))
                #expect(error.description.hasPrefix("refused plugin \(mutated): "))
            }
        }
        #expect(refused > 1000, "most mutations break something the check reads")
    }

    /// Without section headers (optional at run time) the dynamic segment's symbol table and hash table are read,
    /// GNU or System V.
    @Test(arguments: ["gnu", "sysv"])
    func withoutSectionHeadersTheDynamicSegmentIsRead(hashStyle: String) throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let flags = ["-Wl,--hash-style=\(hashStyle)"]
        let good = try PluginLoaderTests.compile("good_c_transform.c", into: directory, as: "good", flags: flags)
        let marker = directory.appendingPathComponent("opened").path
        let other = try PluginLoaderTests.compile(
            "constructor_marker.c", into: directory, as: "other", flags: flags + [#"-DMARKER="\#(marker)""#]
        )
        for path in [good, other] {
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            for offset in 40..<48 { bytes[offset] = 0 }  // e_shoff
            for offset in 60..<64 { bytes[offset] = 0 }  // e_shnum, e_shstrndx
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        #expect(try PluginLoader.load(path: good).name == "c-identity")
        let error = #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: other) }
        #expect(error?.code == .missingEntry)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    // MARK: Permissions

    @Test func aGroupWritableFileIsRefusedUnlessAllowed() throws {
        let (directory, plugin) = try Self.directoryWithGoodPlugin()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(PluginCatalog.scan(directories: [directory.path]).plugins["c-identity"] != nil, "0755 under /tmp loads")
        chmod(plugin, 0o664)
        let refused = PluginCatalog.scan(directories: [directory.path])
        #expect(refused.plugins.isEmpty)
        let refusal = try Self.refusal(for: plugin, in: refused)
        #expect(refusal.code == .insecure)
        #expect(refusal.description.hasPrefix("refused plugin \(plugin): insecure: file is writable by group (mode 664)"))
        #expect(refusal.description.contains("--allow-insecure-plugins"))
        #expect(!refusal.description.contains("\n"))

        let allowed = PluginCatalog.scan(directories: [directory.path], allowInsecure: true)
        #expect(allowed.plugins["c-identity"]?.path == plugin)
        #expect(allowed.refusals.isEmpty)
        #expect(allowed.warnings == [
            "loaded insecure plugin \(plugin) because of --allow-insecure-plugins: file is writable by group (mode 664)"
        ])
        #expect(throws: PluginLoadError.self) { _ = try PluginLoader.load(path: plugin) }
        #expect(try PluginLoader.load(path: plugin, allowInsecure: true).insecurityWarning != nil)
    }

    @Test func aWorldWritableDirectoryIsRefusedUnlessStickyAndRootOwned() throws {
        let (directory, plugin) = try Self.directoryWithGoodPlugin()
        defer { try? FileManager.default.removeItem(at: directory) }
        chmod(directory.path, 0o777)
        let refusal = try Self.refusal(for: plugin, in: PluginCatalog.scan(directories: [directory.path]))
        #expect(refusal.code == .insecure)
        #expect(refusal.cause.contains("directory \(directory.path) is writable by group and others (mode 777)"))
        let allowed = PluginCatalog.scan(directories: [directory.path], allowInsecure: true)
        #expect(allowed.plugins["c-identity"] != nil && allowed.warnings.count == 1)

        // Sticky and root-owned, like /tmp: others cannot replace a file they do not own.
        chmod(directory.path, 0o1777)
        #expect(PluginCatalog.scan(directories: [directory.path]).plugins["c-identity"] != nil || !Self.isRoot)
    }

    @Test func aSymlinkInAWritableDirectoryIsRefused() throws {
        let (directory, plugin) = try Self.directoryWithGoodPlugin()
        defer { try? FileManager.default.removeItem(at: directory) }
        let open = directory.appendingPathComponent("open")
        try FileManager.default.createDirectory(at: open, withIntermediateDirectories: false)
        chmod(open.path, 0o777)
        try FileManager.default.createSymbolicLink(atPath: open.path + "/link.so", withDestinationPath: plugin)
        let refusal = try Self.refusal(for: plugin, in: PluginCatalog.scan(directories: [open.path]))
        #expect(refusal.cause.contains("directory \(open.path) is writable by group and others"))
    }

    @Test(.enabled(if: isRoot, "chown to another user needs root"))
    func foreignOwnedFilesAndDirectoriesAreRefused() throws {
        let (directory, plugin) = try Self.directoryWithGoodPlugin()
        defer { try? FileManager.default.removeItem(at: directory) }
        chown(plugin, 12345, 12345)
        var refusal = try Self.refusal(for: plugin, in: PluginCatalog.scan(directories: [directory.path]))
        #expect(refusal.code == .insecure)
        #expect(refusal.cause.contains("file is owned by uid 12345, neither root nor the user running sluice (uid 0)"))
        #expect(PluginCatalog.scan(directories: [directory.path], allowInsecure: true).plugins["c-identity"] != nil)

        chown(plugin, 0, 0)
        chown(directory.path, 12345, 12345)
        refusal = try Self.refusal(for: plugin, in: PluginCatalog.scan(directories: [directory.path]))
        #expect(refusal.cause.contains("directory \(directory.path) is owned by uid 12345"))

        chmod(directory.path, 0o1777)  // sticky, but not root's: its owner may replace anything in it
        refusal = try Self.refusal(for: plugin, in: PluginCatalog.scan(directories: [directory.path]))
        #expect(refusal.cause.contains("directory \(directory.path) is owned by uid 12345"))
        #expect(refusal.cause.contains("writable by group and others (mode 1777)"))
    }
}
