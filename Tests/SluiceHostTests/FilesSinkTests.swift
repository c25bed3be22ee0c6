import Foundation
import SluiceLoader
import SluiceSDK
import SluiceTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `files` sink, loaded from its built `.so`: it never writes through a symlink planted in its output directory,
/// removes what crashed attempts left there, and refuses options that would put files elsewhere.
@Suite(.serialized)
struct FilesSinkTests {
    static var plugin: LoadedPlugin {
        get throws { try #require(TestPaths.catalog.plugins["files"], "the files plugin is built next to the tests") }
    }

    static func sink(prefix: String, suffix: String = "tsv") throws -> PluginInstance {
        try PluginInstance(
            plugin: try plugin,
            name: "out",
            configJSON: #"{"prefix":"\#(prefix)","suffix":"\#(suffix)","format":"tsv","fsync":true}"#
        ) { _, _, _ in }
    }

    static func write(_ sink: PluginInstance, batch: UInt64, time: Int64, _ lines: [String]) throws {
        let info = BatchInfo(id: batch, timeMilliseconds: time)
        try sink.begin(info)
        try sink.write(.of(lines.map { Record($0) }))
        try sink.commit(info)
    }

    static func isSymlink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    /// A symlink at a batch's final name, and at the temporary names the sink used to predict
    /// (`.PREFIX-<time>.tmp-<pid>`): the targets are never written, and the output is a regular file.
    @Test func plantedSymlinksAreNeverWrittenThrough() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("out").path
        let victim = directory.appendingPathComponent("victim").path
        let missing = directory.appendingPathComponent("created-by-the-sink").path
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let sink = try Self.sink(prefix: out + "/part")
        // Planted after the sink started (at start it removes such names as leftovers).
        #expect(symlink(victim, out + "/part-1000.tsv") == 0)
        #expect(symlink(missing, out + "/.part-1000.tmp-\(getpid())") == 0)
        #expect(symlink(victim, out + "/.part-2000.tmp-\(getpid())") == 0)
        try Self.write(sink, batch: 0, time: 1000, ["a", "b"])
        try Self.write(sink, batch: 1, time: 2000, ["c"])
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n", "the symlink's target is untouched")
        #expect(!FileManager.default.fileExists(atPath: missing), "no file created through a dangling symlink")
        #expect(!Self.isSymlink(out + "/part-1000.tsv"), "the final name is a regular file now")
        #expect(try String(contentsOfFile: out + "/part-1000.tsv", encoding: .utf8) == "a\nb\n")
        #expect(try String(contentsOfFile: out + "/part-2000.tsv", encoding: .utf8) == "c\n")
    }

    /// Temporary files of processes that died mid-batch go at start; those of a live process other than this one
    /// stay (another sluice writing the same prefix), and so does everything that is not this sink's.
    @Test func temporaryFilesOfCrashedAttemptsAreRemovedAtStart() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dead = Int32.max  // above any pid_max: no such process
        let names = [
            ".part-1000.tmp-\(dead)": false,  // an older sluice's name
            ".part-2000.tmp-\(dead)-9f3a": false,
            ".part-3000.tmp-\(getpid())-77": false,  // this pid, reused after a reboot: not a live batch of ours yet
            ".part-4000.tmp-1-5": true,  // pid 1 lives
            ".other-1000.tmp-\(dead)": true,  // another prefix
            "part-1000.tsv": true,  // committed output
        ]
        for name in names.keys {
            try "x".write(to: directory.appendingPathComponent(name), atomically: false, encoding: .utf8)
        }
        #expect(symlink("/etc/passwd", directory.appendingPathComponent(".part-5000.tmp-\(dead)").path) == 0)
        _ = try Self.sink(prefix: directory.appendingPathComponent("part").path)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        #expect(left == Set(names.filter(\.value).keys), "\(left)")
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"))
    }

    @Test(arguments: [
        ("tsv/../../x", "'suffix'"), ("a/b", "'suffix'"),
    ])
    func aSuffixWithASlashIsRefused(suffix: String, key: String) throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = #expect(throws: (any Error).self) { _ = try Self.sink(prefix: directory.path + "/part", suffix: suffix) }
        #expect("\(error.map { "\($0)" } ?? "")".contains(key), "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test(arguments: ["/tmp/x/", "/tmp/x/..", "/tmp/x/."])
    func aPrefixWithoutAFileNameIsRefused(prefix: String) throws {
        let error = #expect(throws: (any Error).self) { _ = try Self.sink(prefix: prefix) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("'prefix'"), "\(String(describing: error))")
    }
}
