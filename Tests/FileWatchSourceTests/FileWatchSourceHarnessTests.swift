import Foundation
import SluiceTesting
import Testing

@testable import FileWatchSource

/// The file-watch source as a whole, through the SDK's thunks (`PluginHarness`), on a real directory.
@Suite(.timeLimit(.minutes(1)))
struct FileWatchSourceHarnessTests {
    static func config(_ directory: String, start: String = "earliest") -> String {
        #"{"directory": "\#(directory)", "start": "\#(start)", "poll_interval_ms": 20}"#
    }

    @Test func filesPresentAtStartAreReadWithEarliest() throws {
        let input = try TemporaryDirectory()
        defer { input.remove() }
        try "a\nb\n".write(toFile: input.path + "/1.txt", atomically: false, encoding: .utf8)
        try "c\n".write(toFile: input.path + "/.hidden", atomically: false, encoding: .utf8)
        let source = try PluginHarness(FileWatchSource.self, config: Self.config(input.path))
        #expect(try source.waitForAvailable(2) == 0..<2)
        #expect(try source.read(offsets: 0..<2) == [Record("a"), Record("b")])
    }

    /// With a state directory the index log keeps the offsets: a new instance numbers the same files the same way,
    /// and reads a file that arrived while none ran after them.
    @Test func aNewInstanceKeepsTheOffsetsOfTheIndexedFiles() throws {
        let input = try TemporaryDirectory()
        let state = try TemporaryDirectory()
        defer {
            input.remove()
            state.remove()
        }
        try "old\n".write(toFile: input.path + "/0.txt", atomically: false, encoding: .utf8)
        do {
            let source = try PluginHarness(FileWatchSource.self, config: Self.config(input.path, start: "latest"), stateDirectory: state.path)
            try "a\nb\n".write(toFile: input.path + "/1.txt", atomically: false, encoding: .utf8)
            #expect(try source.waitForAvailable(2) == 0..<2)
        }
        #expect(try state.names() == ["files.log"])
        try "c\n".write(toFile: input.path + "/2.txt", atomically: false, encoding: .utf8)
        let source = try PluginHarness(FileWatchSource.self, config: Self.config(input.path, start: "latest"), stateDirectory: state.path)
        #expect(try source.waitForAvailable(3) == 0..<3)
        #expect(try source.read(offsets: 0..<3) == [Record("a"), Record("b"), Record("c")])
        #expect(try IndexLog(directory: state.path).read().first == .skipped(name: "0.txt"))
    }
}
