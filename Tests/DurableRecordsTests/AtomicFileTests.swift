import DurableRecords
import Foundation
import SluiceTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `DurableDirectory` and `AtomicFile`: whole-file replacement through real temporary directories.
struct AtomicFileTests {
    @Test func writeAtomicallyReplacesTheFileAndLeavesNoTemporary() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = try DurableDirectory(path: temporary.path)
        try directory.writeAtomically(Array("one\n".utf8), to: "offset")
        try directory.writeAtomically(Array("two\n".utf8), to: "offset")
        #expect(try String(contentsOfFile: temporary.path + "/offset", encoding: .utf8) == "two\n")
        #expect(try temporary.names() == ["offset"])
    }

    @Test func aFileIsInvisibleUntilCommittedAndRemovedWhenDropped() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = try DurableDirectory(path: temporary.path)
        do {
            let file = try directory.createTemporary(for: "batch")
            try file.write(Array("half".utf8))
            #expect(!FileManager.default.fileExists(atPath: temporary.path + "/batch"))
            #expect(try temporary.names() == [file.temporaryName])
            #expect(file.temporaryName.hasPrefix(".batch.tmp-\(getpid())-"))
        }
        #expect(try temporary.names().isEmpty, "released uncommitted: removed")
        let file = try directory.createTemporary(for: "batch")
        try file.write(Array("whole\n".utf8))
        try file.commit(sync: false)
        #expect(try String(contentsOfFile: temporary.path + "/batch", encoding: .utf8) == "whole\n")
    }

    /// A symlink at the final name is replaced, never written through.
    @Test func aSymlinkAtTheFinalNameIsReplacedNotFollowed() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let victim = temporary.path + "/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        #expect(symlink(victim, temporary.path + "/out") == 0)
        try DurableDirectory(path: temporary.path).writeAtomically(Array("new\n".utf8), to: "out")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        var info = stat()
        #expect(lstat(temporary.path + "/out", &info) == 0 && info.st_mode & S_IFMT == S_IFREG)
    }

    /// Errors name the path and the reason.
    @Test func aMissingDirectoryIsAnErrorNamingIt() {
        let error = #expect(throws: DurableFileError.self) { _ = try DurableDirectory(path: "/nonexistent/sluice-x") }
        #expect(error?.description == "cannot open directory '/nonexistent/sluice-x': No such file or directory")
    }

    /// Leftovers of dead processes (and of this pid, reused after a reboot) go; a live process's stay, and so do
    /// names for other files.
    @Test func staleTemporariesOfDeadProcessesAreRemoved() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let dead = Int32.max  // above any pid_max
        let names = [
            ".offset.tmp-\(dead)-9f": false, ".offset.tmp-\(dead)": false, ".offset.tmp-\(getpid())-1": false,
            ".offset.tmp-1-5": true, ".other.tmp-\(dead)-1": true, "offset": true,
        ]
        for name in names.keys { try "x".write(toFile: temporary.path + "/" + name, atomically: false, encoding: .utf8) }
        #expect(try DurableDirectory(path: temporary.path).removeStaleTemporaries(prefix: "offset") == 3)
        #expect(try temporary.names() == Set(names.filter(\.value).keys))
    }

    @Test(arguments: [
        (".part-1000.tsv.tmp-42-ab", "part-", Int32(42)), (".part-1000.tmp-7", "part-", 7), (".part-1.tmp-x", "part-", nil),
        ("part-1000.tmp-42", "part-", nil), (".other-1.tmp-42", "part-", nil),
    ])
    func temporaryNamesNameTheirOwner(name: String, prefix: String, owner: Int32?) {
        #expect(TemporaryFileName.owner(of: name, prefix: prefix) == owner)
    }
}
