import Foundation
import Testing

/// Operations that read several streams read their union, as docs/pipeline.md promises for keyed operations: a
/// `groupByKey` or a `window` over `from: [a, b]` sees the records of both (issue 14, item 4; Spark gets the same by
/// `a.union(b).groupByKey()`).
@Suite(.timeLimit(.minutes(2)))
struct MultiInputPipelineTests {
    @Test func groupByKeyAndWindowOverTwoStreamsSeeBoth() throws {
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        for (directory, text) in [("left", "a b a\n"), ("right", "b c\n")] {
            try FileManager.default.createDirectory(at: work.appendingPathComponent(directory), withIntermediateDirectories: true)
            try text.write(to: work.appendingPathComponent("\(directory)/in.txt"), atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(at: work.appendingPathComponent("out"), withIntermediateDirectories: true)
        try """
            name: two-inputs
            batch_interval: 50ms
            sources:
              left: {plugin: file-watch, config: {directory: left, glob: "*.txt", start: earliest}}
              right: {plugin: file-watch, config: {directory: right, glob: "*.txt", start: earliest}}
            stages:
              leftPairs: {from: left, plugin: split, config: {output: pairs}}
              rightPairs: {from: right, plugin: split, config: {output: pairs}}
              leftWords: {from: left, plugin: split}
              rightWords: {from: right, plugin: split}
              grouped: {from: [leftPairs, rightPairs], op: groupByKey}
              both: {from: [leftWords, rightWords], op: window, window: 50ms}
              counted: {from: both, op: countByValue}
            sinks:
              grouped: {from: grouped, plugin: files, config: {prefix: out/grouped, format: tsv}}
              counted: {from: counted, plugin: files, config: {prefix: out/counted, format: tsv}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)

        let result = try Support.sluice(["run", "pipeline.yaml", "--until-idle", "--progress", "plain"], directory: work, timeout: 60)
        #expect(result.status == 0, "stderr:\n\(result.stderr)")

        let out = work.appendingPathComponent("out")
        // Each value is 1, so a key's group reads the same in whatever order its values came.
        #expect(Set(Support.sinkRecords(out, prefix: "grouped")) == ["a\t[1,1]", "b\t[1,1]", "c\t[1]"])
        #expect(Set(Support.sinkRecords(out, prefix: "counted")) == ["a\t2", "b\t2", "c\t1"])
    }
}
