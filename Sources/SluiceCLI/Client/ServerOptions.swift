import ArgumentParser
import Foundation

/// Where `sluice submit`, `status`, `logs`, `stop` and `top` find the server.
struct ServerOptions: ParsableArguments {
    @Option(
        name: .customLong("server"),
        help: ArgumentHelp(
            "The server's URL, with its base path if it has one (default: $SLUICE_SERVER, else http://127.0.0.1:8998).",
            valueName: "url"
        )
    )
    var server: String?

    /// The server to talk to, checked.
    func client() throws -> ServerClient {
        let text = server ?? ProcessInfo.processInfo.environment["SLUICE_SERVER"] ?? "http://127.0.0.1:8998"
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ValidationError("--server must be an http:// or https:// URL such as http://127.0.0.1:8998, not '\(text)'")
        }
        return ServerClient(base: url)
    }
}
