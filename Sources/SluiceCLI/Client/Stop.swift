import ArgumentParser
import Foundation

/// `sluice stop ID`: DELETE /batches/ID — the batch in flight finishes and commits, then the pipeline ends `killed`.
struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop a pipeline running on a `sluice serve` server (gracefully)."
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "The batch id.")
    var id: Int

    @Flag(name: .customLong("no-wait"), help: "Return once the server accepted the request, without waiting for the pipeline to end.")
    var noWait = false

    @Option(help: "Seconds to wait for the pipeline to end.")
    var timeout: Double = 120

    func run() async throws { try await server.withClient(run) }

    private func run(_ client: ServerClient) async throws {
        _ = try await client.send("DELETE", "/batches/\(id)", as: ServerAPI.Deleted.self)
        guard !noWait else {
            StatusLine.write("batch \(id): stop requested")
            return
        }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let batch = try await client.send("GET", "/batches/\(id)", as: ServerAPI.Batch.self)
            if batch.isFinal {
                StatusLine.write("batch \(id) is \(batch.state)")
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        StatusLine.write("batch \(id) did not end within \(Int(timeout)) s; the server keeps stopping it")
        throw ExitCode(1)
    }
}
