import ArgumentParser
import Foundation

/// `sluice logs ID`: a pipeline's log lines, as the server keeps them; `--follow` goes on printing new ones.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the log of a pipeline on a `sluice serve` server."
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "The batch id.")
    var id: Int

    @Option(help: "How many of the last lines to print first.")
    var tail = 100

    @Flag(name: [.short, .long], help: "Keep printing new lines until the pipeline ends (or Ctrl-C).")
    var follow = false

    func validate() throws {
        guard tail >= 0 else { throw ValidationError("--tail must be 0 or more, not \(tail)") }
    }

    func run() async throws { try await server.withClient(run) }

    private func run(_ client: ServerClient) async throws {
        // The server keeps a window of the last lines, and its offsets move as the window slides: following goes by
        // content, printing what comes after the lines already printed.
        var printed = try await page(client, size: tail)
        printed.forEach { print($0) }
        guard follow else { return }
        while true {
            let batch = try await client.send("GET", "/batches/\(id)", as: ServerAPI.Batch.self)
            let recent = try await page(client, size: 1000)
            let fresh = Self.after(printed, in: recent)
            fresh.forEach { print($0) }
            printed = Array((printed + fresh).suffix(1000))
            if batch.isFinal {
                StatusLine.write("batch \(id) is \(batch.state)" + (batch.cause.map { ": \($0)" } ?? ""))
                return
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    private func page(_ client: ServerClient, size: Int) async throws -> [String] {
        try await client.send("GET", "/batches/\(id)/log?size=\(size)", as: ServerAPI.LogPage.self).log
    }

    /// The lines of `recent` after the longest suffix of `printed` that `recent` starts its overlap with; all of
    /// `recent` when nothing overlaps (more lines came than one page holds).
    static func after(_ printed: [String], in recent: [String]) -> [String] {
        guard !printed.isEmpty else { return recent }
        for overlap in stride(from: min(printed.count, recent.count), to: 0, by: -1) {
            if Array(printed.suffix(overlap)) == Array(recent.prefix(overlap)) { return Array(recent.dropFirst(overlap)) }
        }
        return recent
    }
}
