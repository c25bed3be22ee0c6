import ArgumentParser
import Foundation

/// `sluice status [ID]`: the server's pipelines, or one in detail.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the pipelines on a `sluice serve` server, or one of them in detail."
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "A batch id; without one, every pipeline is listed.")
    var id: Int?

    func run() async throws { try await server.withClient(run) }

    private func run(_ client: ServerClient) async throws {
        guard let id else {
            let list = try await client.send("GET", "/batches?size=1000", as: ServerAPI.BatchList.self)
            let rows = list.sessions.map { [String($0.id), $0.name ?? "", $0.state, $0.appInfo?["restarts"].flatMap { $0 } ?? "0", $0.cause ?? ""] }
            print(Table.render(header: ["ID", "NAME", "STATE", "RESTARTS", "CAUSE"], rows: rows))
            if list.total > list.sessions.count { print("(\(list.sessions.count) of \(list.total) shown)") }
            return
        }
        let batch = try await client.send("GET", "/batches/\(id)", as: ServerAPI.Batch.self)
        let statistics = try await client.send("GET", "/batches/\(id)/streaming/statistics", as: ServerAPI.Statistics.self)
        var lines = [
            "batch \(batch.id) '\(batch.name ?? "")': \(batch.state)" + (batch.cause.map { " (\($0))" } ?? ""),
            "  process:   " + (batch.appInfo?["pid"].flatMap { $0 }.map { "pid \($0)" } ?? "none")
                + ", restarts \(statistics.restarts), restart policy \(batch.appInfo?["restartPolicy"].flatMap { $0 } ?? "never")",
        ]
        if let start = statistics.startTime {
            lines.append("  up:        " + Figures.duration(Date().timeIntervalSince1970 - Double(start) / 1000))
        }
        lines.append("  batches:   \(statistics.batchesCompleted) completed, \(statistics.batchesFailed) failed, \(statistics.records) records")
        let averages = statistics.averages
        lines.append(
            "  averages:  input \(Figures.rate(averages.inputRate)), scheduling delay \(Figures.milliseconds(averages.schedulingDelayMilliseconds)), "
                + "processing \(Figures.milliseconds(averages.processingMilliseconds)), total delay \(Figures.milliseconds(averages.totalDelayMilliseconds))"
        )
        if let last = statistics.lastBatch {
            lines.append(
                "  last:      batch \(last.id) \(last.status), \(last.records.map(String.init) ?? "-") records, "
                    + "processing \(Figures.milliseconds(last.processingMilliseconds))"
            )
        }
        if let log = batch.log, !log.isEmpty {
            lines.append("  log:")
            lines += log.suffix(5).map { "    " + $0 }
        }
        print(lines.joined(separator: "\n"))
    }
}

/// Figures as the tools print them.
enum Figures {
    static func milliseconds(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value >= 1000 ? String(format: "%.2f s", value / 1000) : String(format: "%.1f ms", value)
    }

    static func rate(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value >= 10_000 ? String(format: "%.0fk records/s", value / 1000) : String(format: "%.1f records/s", value)
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return "\(s / 3600) h \(s % 3600 / 60) min"
    }
}

/// Columns aligned with spaces, the first row a header.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}
