import Foundation
import Testing

/// The typed-API example program (examples/swift-api) runs and computes what the text says.
@Suite(.timeLimit(.minutes(2)))
struct SwiftAPIExampleTests {
    @Test func theSwiftWordCountExampleCountsCorrectly() throws {
        let program = Support.binDirectory.appendingPathComponent("swift-wordcount").path
        let result = try Support.run(program, [], directory: Support.repoRoot, timeout: 60)
        #expect(result.status == 0, "stderr:\n\(result.stderr)")
        let batches = try WindowedPipelineTests.wordsPerBatch() + [[], []]
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for n in batches.indices {
            let distinct = Set(batches[n]).count
            #expect(lines.contains { $0.hasPrefix("batch \(n): \(distinct) distinct words") }, "batch \(n): \(lines)")
            let window = batches[max(0, n - 1)...n].reduce(0) { $0 + $1.count }
            #expect(lines.contains("batch \(n): \(window) words in the last second"), "batch \(n): \(lines)")
        }
        #expect(lines.last == "5 batches, 35 lines")
    }
}
