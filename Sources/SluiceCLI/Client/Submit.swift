import ArgumentParser
import Foundation

/// `sluice submit FILE`: POST /batches, Livy's way.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a pipeline to a `sluice serve` server.",
        discussion: """
            Sends the pipeline file's path (the server reads it; it must be under one of the server's --allow-dir \
            directories), or with --inline the file's text. Prints the batch id on standard output and the state on \
            standard error.
            """
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "The pipeline file.")
    var file: String

    @Option(help: "A name for the batch (default: the pipeline's name).")
    var name: String?

    @Flag(help: "Send the file's text instead of its path (relative paths in it then resolve against the server's data directory).")
    var inline = false

    @Option(name: .customLong("arg"), help: ArgumentHelp("A `sluice run` argument (repeatable), e.g. --arg --batches --arg 10.", valueName: "argument"))
    var arguments: [String] = []

    @Option(name: .customLong("conf"), help: ArgumentHelp("An override KEY.PATH=VALUE, as `sluice run --set` (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: ArgumentHelp("Restart the pipeline when it fails: on-failure or never (the server's default: never).", valueName: "policy"))
    var restart: String?

    @Flag(help: "Wait until the pipeline runs (or ends) and say which.")
    var wait = false

    func validate() throws {
        if let restart, !["on-failure", "never"].contains(restart) {
            throw ValidationError("--restart must be on-failure or never, not '\(restart)'")
        }
        for override in overrides where !override.contains("=") {
            throw ValidationError("--conf takes KEY.PATH=VALUE, not '\(override)'")
        }
    }

    func run() async throws { try await server.withClient(run) }

    private func run(_ client: ServerClient) async throws {
        let path = URL(fileURLWithPath: file).standardizedFileURL.path
        var body: [String: Any] = [:]
        if inline {
            guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw ValidationError("cannot read \(file)")
            }
            body["pipeline"] = text
        } else {
            body["file"] = path
        }
        if let name { body["name"] = name }
        if !arguments.isEmpty { body["args"] = arguments }
        var conf: [String: String] = [:]
        for override in overrides {
            let parts = override.split(separator: "=", maxSplits: 1)
            conf[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        if let restart { conf["restart"] = restart }
        if !conf.isEmpty { body["conf"] = conf }

        var batch = try await client.send("POST", "/batches", body: body, as: ServerAPI.Batch.self)
        print(batch.id)
        if wait {
            while batch.state == "starting" {
                try await Task.sleep(for: .milliseconds(200))
                batch = try await client.send("GET", "/batches/\(batch.id)", as: ServerAPI.Batch.self)
            }
        }
        StatusLine.write("batch \(batch.id) '\(batch.name ?? "")' is \(batch.state)" + (batch.cause.map { ": \($0)" } ?? ""))
        if batch.state == "dead" { throw ExitCode(1) }
    }
}

extension ServerAPI.Batch {
    /// Why a dead batch died, as the server says.
    var cause: String? { appInfo?["cause"] ?? nil }
}

/// A line for the user on standard error: what happened, while standard output carries what scripts read.
enum StatusLine {
    static func write(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }
}
