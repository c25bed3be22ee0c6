import ArgumentParser
import AsyncHTTPClient
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

    @Option(
        name: .customLong("token-file"),
        help: ArgumentHelp("A file whose first token is one the server accepts (a line of its --token-file).", valueName: "file")
    )
    var tokenFile: String?

    /// Runs `body` with a client of the server, checked, and shuts the client's connections down after it, however
    /// it ends.
    func withClient<Value>(_ body: (ServerClient) async throws -> Value) async throws -> Value {
        let (base, authorization) = try checked()
        return try await HTTPClient.withHTTPClient(configuration: ServerClient.configuration) { http in
            try await body(ServerClient(base: base, authorization: authorization, http: http))
        }
    }

    /// The server's URL and the `Authorization` header's value, checked.
    private func checked() throws -> (URL, String?) {
        let text = server ?? ProcessInfo.processInfo.environment["SLUICE_SERVER"] ?? "http://127.0.0.1:8998"
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ValidationError("--server must be an http:// or https:// URL such as http://127.0.0.1:8998, not '\(text)'")
        }
        var authorization: String?
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else { throw ValidationError("cannot read --token-file \(tokenFile)") }
            // The first token, read as the server reads its --token-file: blank lines and # comments skipped.
            let token = String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { !$0.isEmpty && !$0.hasPrefix("#") } ?? ""
            guard !token.isEmpty else { throw ValidationError("--token-file \(tokenFile) holds no token") }
            authorization = "Bearer " + token
        }
        return (url, authorization)
    }
}
