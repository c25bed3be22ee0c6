import Foundation
import SluiceTesting
import Testing

@testable import FileWatchSource

/// `partitions: N`: each file goes to the partition with the fewest lines so far, and with a state directory a new
/// instance gives every file the same partition and offsets, then places the files that arrived meanwhile.
@Suite(.timeLimit(.minutes(1)))
struct FileWatchPartitionTests {
    static func config(_ directory: String, partitions: Int, start: String = "earliest") -> String {
        #"{"directory": "\#(directory)", "start": "\#(start)", "poll_interval_ms": 20, "partitions": \#(partitions)}"#
    }

    static func write(_ directory: TemporaryDirectory, _ name: String, lines: Int) throws {
        try (0..<lines).map { "\(name)-\($0)\n" }.joined().write(toFile: directory.path + "/" + name, atomically: true, encoding: .utf8)
    }

    /// Every partition's lines, read with the offsets the instance offers.
    static func contents(_ source: PluginHarness, partitions: Int) throws -> [[String]] {
        try (0..<partitions).map { p in
            let range = try source.available(partition: p)
            return try source.read(partition: p, offsets: range).map { record in
                guard case .text(let text) = record.value else { return "?" }
                return text
            }
        }
    }

    static func lines(_ name: String, _ count: Int) -> [String] { (0..<count).map { "\(name)-\($0)" } }

    @Test func filesGoToThePartitionWithTheFewestLines() throws {
        let input = try TemporaryDirectory()
        defer { input.remove() }
        // Found in one scan, placed in name order: a → 0, b → 1, c → 2 (all empty), d → 1 (2 lines, the fewest).
        try Self.write(input, "a.txt", lines: 5)
        try Self.write(input, "b.txt", lines: 2)
        try Self.write(input, "c.txt", lines: 3)
        try Self.write(input, "d.txt", lines: 4)
        let source = try PluginHarness(FileWatchSource.self, config: Self.config(input.path, partitions: 3))
        #expect(try source.partitionCount() == 3)
        #expect(try Self.contents(source, partitions: 3) == [Self.lines("a.txt", 5), Self.lines("b.txt", 2) + Self.lines("d.txt", 4), Self.lines("c.txt", 3)])
        // A range inside a partition, across its two files.
        let middle = try source.read(partition: 1, offsets: 1..<3).map(\.value)
        #expect(middle == [.text("b.txt-1"), .text("d.txt-0")])
        #expect(throws: (any Error).self) { try source.available(partition: 3) }
    }

    /// The offsets of every partition survive a restart (the index log), the files that arrived while no instance ran
    /// are placed after them, and the partitions can grow but not shrink.
    @Test func aNewInstanceKeepsEveryPartitionsOffsetsAndMayAddPartitions() throws {
        let input = try TemporaryDirectory()
        let state = try TemporaryDirectory()
        defer {
            input.remove()
            state.remove()
        }
        try Self.write(input, "a.txt", lines: 3)
        try Self.write(input, "b.txt", lines: 1)
        try Self.write(input, "c.txt", lines: 2)
        let first: [[String]]
        do {
            let source = try PluginHarness(FileWatchSource.self, config: Self.config(input.path, partitions: 2), stateDirectory: state.path)
            first = try Self.contents(source, partitions: 2)
            #expect(first == [Self.lines("a.txt", 3), Self.lines("b.txt", 1) + Self.lines("c.txt", 2)])
        }
        // Arrived while down: partition 0 and 1 both hold 3 lines, so e goes to 0.
        try Self.write(input, "e.txt", lines: 2)
        do {
            let source = try PluginHarness(FileWatchSource.self, config: Self.config(input.path, partitions: 2), stateDirectory: state.path)
            #expect(try Self.contents(source, partitions: 2) == [first[0] + Self.lines("e.txt", 2), first[1]])
        }
        let shrunk = #expect(throws: (any Error).self) {
            _ = try PluginHarness(FileWatchSource.self, config: Self.config(input.path, partitions: 1), stateDirectory: state.path)
        }
        #expect("\(shrunk.map { "\($0)" } ?? "")".contains("configuration key 'partitions': 1"), "\(String(describing: shrunk))")
        // Growing: the old files keep their partitions and offsets; the next file goes to the new, empty partition.
        try Self.write(input, "f.txt", lines: 1)
        let grown = try PluginHarness(FileWatchSource.self, config: Self.config(input.path, partitions: 3), stateDirectory: state.path)
        #expect(try Self.contents(grown, partitions: 3) == [first[0] + Self.lines("e.txt", 2), first[1], Self.lines("f.txt", 1)])
        #expect(try IndexLog(directory: state.path).read().contains(.partitions(3)))
    }

    @Test(arguments: [0, 1025])
    func aPartitionCountOutOfRangeIsRefusedNamingTheKey(partitions: Int) throws {
        let input = try TemporaryDirectory()
        defer { input.remove() }
        let error = #expect(throws: (any Error).self) {
            _ = try PluginHarness(FileWatchSource.self, config: Self.config(input.path, partitions: partitions))
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("configuration key 'partitions': \(partitions) is not between 1 and 1024"))
    }
}
