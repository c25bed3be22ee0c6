import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
public import Logging
import NIOCore
import Prometheus
public import ServiceLifecycle

/// `sluice serve` as a library: the HTTP API (hummingbird) and the pipeline supervisor, run together as one
/// swift-service-lifecycle `Service`. It installs no signal handler and never exits the process: whoever runs it
/// (the `serve` command, a test) owns signals and triggers the graceful shutdown, which stops the HTTP server, then
/// every pipeline (SIGTERM; SIGKILL after the stop timeout), and returns.
public final class SluiceServer: Service, Sendable {
    public let configuration: ServeConfiguration
    private let logger: Logger
    private let supervisor: PipelineSupervisor
    private let registry: PrometheusCollectorRegistry
    private let environment: [String: String]
    private let onListening: @Sendable (_ host: String, _ port: Int) -> Void

    /// - Parameters:
    ///   - environment: what `${NAME}` in a submitted pipeline reads when the server checks it (the children
    ///     inherit the server's process environment).
    ///   - onListening: called once the server listens, with the port it got (port 0 asks for a free one).
    public init(
        configuration: ServeConfiguration, environment: [String: String], logger: Logger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.environment = environment
        self.onListening = onListening
        registry = PrometheusCollectorRegistry()
        supervisor = try PipelineSupervisor(
            configuration: configuration, metricsFactory: PrometheusMetricsFactory(registry: registry), logger: logger
        )
    }

    /// Sends SIGKILL to every pipeline's process at once, for a process that must exit now (a second signal): the
    /// pipelines run in process groups of their own and would outlive it. They resume from their checkpoints.
    public func killPipelines() {
        supervisor.killAll()
    }

    /// HTTP/1.1, over TLS when the configuration has a certificate.
    private func httpServer() throws -> HTTPServerBuilder {
        guard let tls = configuration.tls else { return .http1() }
        let chain = try NIOSSLCertificate.fromPEMFile(tls.certificateChain.path).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: tls.privateKey.path, format: .pem)
        return try .tls(.http1(), tlsConfiguration: TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
    }

    public func run() async throws {
        let router = Router(context: BasicRequestContext.self)
        // First, so that it guards every route added after it.
        if let credentials = configuration.credentials {
            router.add(middleware: AuthenticationMiddleware(credentials: credentials, basePath: configuration.basePath))
        }
        LivyRoutes(supervisor: supervisor, configuration: configuration, registry: registry, environment: environment)
            .add(to: router)
        StreamingTabRoutes(supervisor: supervisor, basePath: configuration.basePath).add(to: router)
        let supervisor = supervisor
        let onListening = onListening
        let host = configuration.host
        let application = Application(
            router: router,
            server: try httpServer(),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "sluice"
            ),
            onServerRunning: { channel in
                onListening(host, channel.localAddress?.port ?? 0)
                // Pipelines that were running start again only once the API can answer for them.
                supervisor.recover()
            },
            logger: logger
        )
        // Stopped in reverse: the pipelines first (SIGTERM, each batch in flight commits), while the API still answers
        // (`/ready` says 503, `/batches/{id}/state` what each one does), then the HTTP server.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: application, failureTerminationBehavior: .gracefullyShutdownGroup), .init(service: supervisor),
                ],
                logger: logger
            )
        )
        try await group.run()
    }
}
