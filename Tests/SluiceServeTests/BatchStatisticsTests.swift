import Foundation
import SluiceHost
import Testing

@testable import SluiceServe

/// The statistics and the log tail the API serves, built from event lines and log lines.
struct BatchStatisticsTests {
    static func completed(_ id: UInt64, records: Int, from: UInt64, to: UInt64) -> BatchEventLine {
        var line = BatchEventLine(event: .batchCompleted, pipeline: "p")
        line.id = id
        line.timeMilliseconds = 1000 + Int64(id) * 200
        line.records = records
        line.ranges = [SourceRange(source: "s", partition: 0, from: from, to: to)]
        line.schedulingDelayMilliseconds = 1
        line.processingMilliseconds = 10
        line.totalDelayMilliseconds = 11
        line.backlog = [.init(source: "s", partition: 0, position: to, availableEnd: to + 5, lag: 5)]
        return line
    }

    @Test func batchesPartitionsAndAveragesFollowTheEvents() throws {
        var statistics = BatchStatistics(kept: 3)
        var hello = BatchEventLine(event: .hello, pipeline: "p")
        hello.batchIntervalMilliseconds = 200
        statistics.apply(hello)
        for id in 0..<5 as Range<UInt64> {
            var started = BatchEventLine(event: .batchStarted, pipeline: "p")
            started.id = id
            started.timeMilliseconds = 1000 + Int64(id) * 200
            statistics.apply(started)
            #expect(statistics.batches.last?.status == "processing")
            statistics.apply(Self.completed(id, records: 10, from: id * 10, to: id * 10 + 10))
        }
        var failed = BatchEventLine(event: .batchFailed, pipeline: "p")
        failed.id = 5
        failed.error = "sink refused"
        failed.errors = [.init(component: "out", call: "commit", count: 5)]
        failed.sinkRetries = ["out": 4]
        // As the child writes it and the server reads it.
        let decoded = try JSONDecoder().decode(BatchEventLine.self, from: JSONEncoder().encode(failed))
        #expect(decoded == failed)
        statistics.apply(decoded)

        #expect(statistics.batches.map(\.id) == [3, 4, 5], "the last three kept")
        #expect(statistics.batches.last?.status == "failed" && statistics.batches.last?.error == "sink refused")
        #expect(statistics.batches.last?.errors?.first?.count == 5 && statistics.batches.last?.sinkRetries == ["out": 4])
        #expect(statistics.completed == 5 && statistics.failed == 1 && statistics.records == 50)
        #expect(statistics.batches.first?.inputRate == 50, "10 records in 200 ms")
        #expect(statistics.averages.processingMilliseconds == 10)
        let partition = statistics.partitionList.first
        #expect(partition?.position == 50 && partition?.records == 50 && partition?.lag == 5 && partition?.lastBatch == 4)
    }

    @Test func theLogTailPagesLikeLivy() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("serve-log-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        var tail = LogTail(kept: 150, file: file, fileLimit: 1 << 20)
        for number in 0..<200 { tail.append("line \(number)", isError: number % 2 == 0) }
        tail.close()
        #expect(tail.count == 150)
        let last = tail.page(from: nil, size: nil)
        #expect(last.from == 50 && last.lines.count == 100 && last.lines.last == "line 199")
        let page = tail.page(from: 0, size: 2)
        #expect(page.lines == ["line 50", "line 51"], "from counts from the oldest line kept")
        #expect(tail.page(from: 149, size: 10).lines == ["line 199"])
        #expect(tail.page(from: 500, size: 10).lines.isEmpty)
        #expect(tail.lastErrors.last == "line 198")
        let written = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        #expect(written.count == 200, "the file keeps every line")
    }
}
