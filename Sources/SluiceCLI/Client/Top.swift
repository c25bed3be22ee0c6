import ArgumentParser
import Foundation

/// `sluice top`: a live view of a server's pipelines and their latest figures, refreshed every interval (Vector's
/// `vector top`).
struct Top: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Watch the pipelines of a `sluice serve` server, live."
    )

    @OptionGroup var server: ServerOptions

    @Option(help: "Seconds between refreshes.")
    var interval: Double = 1

    @Option(help: ArgumentHelp("Stop after this many refreshes (default: until Ctrl-C).", valueName: "count"))
    var iterations: Int?

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1") }
    }

    func run() async throws { try await server.withClient(run) }

    private func run(_ client: ServerClient) async throws {
        // On a terminal the view replaces itself; piped, each refresh is appended (readable in a log or a test).
        let terminal = isatty(STDOUT_FILENO) == 1
        var done = 0
        while iterations.map({ done < $0 }) ?? true {
            let screen = try await render(client)
            FileHandle.standardOutput.write(Data(((terminal ? "\u{1B}[H\u{1B}[2J" : "") + screen + "\n").utf8))
            done += 1
            if iterations.map({ done < $0 }) ?? true { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
        }
    }

    private func render(_ client: ServerClient) async throws -> String {
        let list = try await client.send("GET", "/batches?size=1000", as: ServerAPI.BatchList.self)
        var rows: [[String]] = []
        for batch in list.sessions {
            let statistics = try? await client.send("GET", "/batches/\(batch.id)/streaming/statistics", as: ServerAPI.Statistics.self)
            let last = statistics?.lastBatch
            rows.append([
                String(batch.id), batch.name ?? "", batch.state,
                statistics.map { String($0.batchesCompleted) } ?? "-",
                statistics.map { String($0.records) } ?? "-",
                Figures.rate(statistics?.averages.inputRate),
                Figures.milliseconds(last?.schedulingDelayMilliseconds),
                Figures.milliseconds(last?.processingMilliseconds),
                Figures.milliseconds(last?.totalDelayMilliseconds),
            ])
        }
        let time = ISO8601DateFormatter().string(from: Date())
        let header = ["ID", "NAME", "STATE", "BATCHES", "RECORDS", "INPUT RATE", "SCHED DELAY", "PROCESSING", "TOTAL DELAY"]
        return "sluice top — \(client.base.absoluteString) — \(time)\n\n" + Table.render(header: header, rows: rows)
    }
}
