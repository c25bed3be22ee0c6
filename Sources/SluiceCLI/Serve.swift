import ArgumentParser
import Foundation
import Logging
import SluiceHost
import ServiceLifecycle
import SluiceServe
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run pipelines as a service: Apache Livy's batch API, one supervised process per pipeline, /metrics.",
        discussion: """
            POST /batches submits a pipeline (a file under an --allow-dir, or its YAML inline); GET /batches, \
            /batches/ID, /batches/ID/state and /batches/ID/log read them; DELETE /batches/ID stops one after its batch \
            in flight. Each pipeline runs as `sluice run` in a child process, with a checkpoint under --data-dir; \
            pipelines that were running start again, from their checkpoints, when the server starts. \
            docs/serve.md lists every route and field.

            SIGTERM or Ctrl-C stops every pipeline gracefully (SIGKILL after --shutdown-timeout), then the server; \
            a second signal exits at once (the pipelines get SIGKILL).
            """
    )

    @Option(help: ArgumentHelp("The address to listen on (HOST:PORT; port 0 picks a free one).", valueName: "host:port"))
    var address = "127.0.0.1:8998"

    @Option(name: .customLong("data-dir"), help: "Where submitted pipelines, their checkpoints and logs are kept.")
    var dataDirectory = "sluice-serve"

    @Option(
        name: .customLong("plugin-dir"),
        help: ArgumentHelp("A directory pipelines may load plugins from (repeatable).", valueName: "dir")
    )
    var pluginDirectories: [String] = []

    @Option(
        name: .customLong("allow-dir"),
        help: ArgumentHelp("A directory whose pipeline files a submission may name in 'file' (repeatable).", valueName: "dir")
    )
    var allowedDirectories: [String] = []

    @Option(name: .customLong("base-path"), help: "Serve every route under this path prefix (e.g. /livy).")
    var basePath = ""

    @Option(name: .customLong("max-body-bytes"), help: "The largest request body accepted.")
    var maximumBodyBytes = 1 << 20

    @Option(name: .customLong("shutdown-timeout"), help: "Seconds a pipeline may take to stop before it gets SIGKILL.")
    var shutdownTimeout: Double = 30

    @Option(name: .customLong("log-level"), help: "The least severe level of the server's own log.")
    var logLevel: LogLevelOption = .info

    @Option(
        name: .customLong("log-format"),
        help: "The server's own log on standard error: text lines or one JSON object per line (each pipeline's log is in /batches/ID/log)."
    )
    var logFormat: LogFormat = .text

    @Option(
        name: .customLong("token-file"),
        help: ArgumentHelp("Bearer tokens that may use the API, one per line (mode 600).", valueName: "file")
    )
    var tokenFile: String?

    @Option(
        name: .customLong("password-file"),
        help: ArgumentHelp("user:password lines for HTTP basic authentication, as Livy clients send (mode 600).", valueName: "file")
    )
    var passwordFile: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("Serve HTTPS with this certificate chain (PEM).", valueName: "file"))
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The private key of --tls-cert (PEM).", valueName: "file"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("The `sluice` executable the pipelines run in (default: this one).", visibility: .hidden))
    var executable: String?

    func validate() throws {
        guard Self.split(address) != nil else { throw ValidationError("--address must be HOST:PORT, e.g. 127.0.0.1:8998") }
        if !basePath.isEmpty && (!basePath.hasPrefix("/") || basePath.hasSuffix("/")) {
            throw ValidationError("--base-path must start with / and not end with one, e.g. /livy")
        }
        if maximumBodyBytes < 1 { throw ValidationError("--max-body-bytes must be positive") }
        if shutdownTimeout <= 0 { throw ValidationError("--shutdown-timeout must be positive") }
        if (tlsCertificate == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        // Anyone who can reach the API can run pipelines, and a pipeline runs plugins: code. Off loopback, only with
        // credentials.
        if let host = Self.split(address)?.host, !Self.isLoopback(host), tokenFile == nil, passwordFile == nil {
            throw ValidationError(
                "--address \(address) is reachable from other machines: give --token-file or --password-file (and --tls-cert/--tls-key)"
            )
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    static func split(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() async throws {
        // A client that hangs up mid-answer must not end the server.
        signal(SIGPIPE, SIG_IGN)
        let (format, level) = (logFormat, logLevel.level)
        LoggingSystem.bootstrap { label in
            SluiceLogHandler(label: label, format: format, level: level, secrets: []) { line in
                FileHandle.standardError.write(Data(line.utf8))
            }
        }
        let logger = Logger(label: "serve")
        let (host, port) = Self.split(address)!
        let current = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        func absolute(_ path: String) -> URL { URL(fileURLWithPath: path, relativeTo: current).standardizedFileURL }
        let sluice = executable.map(absolute) ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var configuration = ServeConfiguration(dataDirectory: absolute(dataDirectory), executable: sluice)
        configuration.host = host
        configuration.port = port
        configuration.basePath = basePath
        configuration.pluginDirectories = pluginDirectories.map(absolute)
        configuration.allowedDirectories = allowedDirectories.map(absolute)
        configuration.maximumBodyBytes = maximumBodyBytes
        configuration.stopTimeout = .milliseconds(Int(shutdownTimeout * 1000))
        if tokenFile != nil || passwordFile != nil {
            do {
                configuration.credentials = try ServeCredentials(tokenFile: tokenFile.map(absolute), passwordFile: passwordFile.map(absolute))
            } catch {
                throw ValidationError("\(error)")
            }
        }
        if let tlsCertificate, let tlsKey {
            configuration.tls = ServeTLS(certificateChain: absolute(tlsCertificate), privateKey: absolute(tlsKey))
        }
        let base = basePath
        let scheme = tlsCertificate == nil ? "http" : "https"
        let server = try SluiceServer(
            configuration: configuration, environment: ProcessInfo.processInfo.environment, logger: logger,
            onListening: { host, port in
                let shown = host.contains(":") ? "[\(host)]" : host
                // On standard output, one line, so that a script (or a test) can read the port it got.
                FileHandle.standardOutput.write(Data("sluice serve: listening on \(scheme)://\(shown):\(port)\(base)\n".utf8))
            }
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: server)], logger: logger)
        )
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let timeout = shutdownTimeout
        let watcher = Task { [logger] in
            var first = true
            for await _ in signals {
                guard first else {
                    // Pipelines run in process groups of their own: they would outlive an exit that left them.
                    logger.warning("second signal: killing the pipelines and exiting now")
                    server.killPipelines()
                    _exit(130)
                }
                first = false
                logger.notice("stopping every pipeline after its batch in flight, then the server")
                // The supervisor sends SIGKILL after the stop timeout itself; this guards against a stop that hangs.
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout + 10) {
                    logger.error("the server's stop took longer than \(timeout + 10) s: exiting")
                    server.killPipelines()
                    _exit(1)
                }
                await group.triggerGracefulShutdown()
            }
        }
        try await group.run()
        watcher.cancel()
    }
}
