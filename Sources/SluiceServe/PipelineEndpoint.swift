import Hummingbird
import HTTPTypes
public import Logging
import NIOCore
public import Prometheus
public import ServiceLifecycle
public import SluiceHost
import Synchronization

/// `sluice run --http ADDR`: one pipeline's `/metrics` (Prometheus text, from the registry its `MetricsListener`
/// records into), `/health` (the process answers) and `/ready` (a batch has completed since the start; 503 before).
/// A `Service` for the run's service group, and a `BatchListener` for its readiness.
public final class PipelineEndpoint: Service, BatchListener, Sendable {
    public let registry: PrometheusCollectorRegistry
    private let host: String
    private let port: Int
    private let logger: Logger
    private let onListening: @Sendable (_ host: String, _ port: Int) -> Void
    private let ready = Atomic<Bool>(false)

    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }
    ) {
        self.host = host
        self.port = port
        self.registry = registry
        self.logger = logger
        self.onListening = onListening
    }

    public func batchCompleted(_ event: BatchCompleted) { ready.store(true, ordering: .relaxed) }

    public func run() async throws {
        let router = Router(context: BasicRequestContext.self)
        let registry = registry
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("health") { _, _ in JSONResponse.make(.ok, ["status": "ok"]) }
        router.get("ready") { [self] _, _ in
            ready.load(ordering: .relaxed)
                ? JSONResponse.make(.ok, ["status": "ready"])
                : JSONResponse.make(.serviceUnavailable, ["status": "starting"])
        }
        let onListening = onListening
        let host = host
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "sluice"),
            onServerRunning: { channel in onListening(host, channel.localAddress?.port ?? 0) },
            logger: logger
        )
        // As a service of the caller's group: its graceful shutdown stops the server (no signal handlers here).
        try await application.run()
    }
}
