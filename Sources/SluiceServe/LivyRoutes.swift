import Foundation
import Hummingbird
import NIOCore
import Prometheus
import Synchronization

/// The HTTP API: Livy's batch routes, the statistics, /metrics, /health, /ready and /version, all under the base
/// path. Every refusal is Livy's `{"msg": ...}` with its status. `X-Requested-By` (Livy's CSRF header) is accepted
/// and not required: the server listens on loopback and changes nothing on a GET.
struct LivyRoutes: Sendable {
    let supervisor: PipelineSupervisor
    let configuration: ServeConfiguration
    let registry: PrometheusCollectorRegistry
    let environment: [String: String]

    func add(to router: Router<BasicRequestContext>) {
        let base = configuration.basePath
        let group = router.group(RouterPath(base.isEmpty ? "/" : base))
        group.post("batches") { request, _ in await handle { try await submit(request) } }
        group.get("batches") { request, _ in await handle { list(request) } }
        group.get("batches/:id") { _, context in
            await handle { try livy(context) }
        }
        group.get("batches/:id/state") { _, context in
            await handle {
                let snapshot = supervisor.snapshot(try batch(context))
                return JSONResponse.make(.ok, ["id": snapshot.record.id, "state": snapshot.record.state.rawValue])
            }
        }
        group.get("batches/:id/log") { request, context in await handle { try log(request, context) } }
        group.delete("batches/:id") { _, context in
            await handle {
                try await supervisor.delete(try id(context))
                return JSONResponse.make(.ok, ["msg": "deleted"])
            }
        }
        group.get("batches/:id/streaming/statistics") { _, context in await handle { try statistics(context) } }
        group.get("batches/:id/streaming/batches") { request, context in await handle { try batches(request, context) } }
        group.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        group.get("health") { _, _ in JSONResponse.make(.ok, ["status": "ok"]) }
        group.get("ready") { _, _ in
            supervisor.isReady
                ? JSONResponse.make(.ok, ["status": "ready"])
                : JSONResponse.make(.serviceUnavailable, ["status": "not ready"])
        }
        group.get("version") { _, _ in JSONResponse.make(.ok, ["version": "0.8.0-incubating", "server": "sluice"]) }
    }

    /// Runs a handler, turning a refusal into its answer.
    private func handle(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as ServeError {
            return JSONResponse.error(error)
        } catch {
            return JSONResponse.error(ServeError(.internalServerError, "\(error)"))
        }
    }

    private func id(_ context: BasicRequestContext) throws -> Int {
        let text = context.parameters.get("id") ?? ""
        guard let id = Int(text) else { throw ServeError.badRequest("batch id must be an integer, not '\(text)'") }
        return id
    }

    private func batch(_ context: BasicRequestContext) throws -> ManagedBatch {
        try supervisor.batch(try id(context))
    }

    private func submit(_ request: Request) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maximumBodyBytes)
        } catch is NIOTooManyBytesError {
            throw ServeError(
                .contentTooLarge, "the request body is larger than \(configuration.maximumBodyBytes) bytes (--max-body-bytes)"
            )
        }
        let parsed = try BatchRequest.parse(
            Array(buffer: body), allowedDirectories: configuration.allowedDirectories, environment: environment
        )
        let snapshot = try supervisor.submit(parsed)
        var headers = HTTPFields()
        headers[.location] = "\(configuration.basePath)/batches/\(snapshot.record.id)"
        return JSONResponse.make(.created, snapshot.livyObject(basePath: configuration.basePath), headers: headers)
    }

    private func list(_ request: Request) -> Response {
        let all = supervisor.allBatches
        let query = request.uri.queryParameters
        let from = max(0, query.get("from", as: Int.self) ?? 0)
        let size = max(0, query.get("size", as: Int.self) ?? 100)
        let page = all.dropFirst(from).prefix(size).map { supervisor.snapshot($0).livyObject(basePath: configuration.basePath) }
        return JSONResponse.make(.ok, ["from": from, "total": all.count, "sessions": page])
    }

    private func livy(_ context: BasicRequestContext) throws -> Response {
        JSONResponse.make(.ok, supervisor.snapshot(try batch(context)).livyObject(basePath: configuration.basePath))
    }

    private func log(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let batch = try batch(context)
        let query = request.uri.queryParameters
        let (from, total, lines) = batch.live.withLock { live in
            let page = live.log.page(from: query.get("from", as: Int.self), size: query.get("size", as: Int.self))
            return (page.from, live.log.count, page.lines)
        }
        // Livy's documentation names the count `size`, its server sends `total`: both are here.
        return JSONResponse.make(.ok, ["id": batch.id, "from": from, "total": total, "size": lines.count, "log": lines])
    }

    /// Spark's `.../streaming/statistics` in spirit: the pipeline's totals, the averages of the kept batches, and
    /// where each source partition stands.
    private func statistics(_ context: BasicRequestContext) throws -> Response {
        let batch = try batch(context)
        let view = batch.live.withLock { live in
            StatisticsView(
                id: batch.id, name: live.record.name, state: live.record.state.rawValue,
                startTime: live.startedAt.map { Int64($0.timeIntervalSince1970 * 1000) },
                batchIntervalMilliseconds: live.statistics.batchIntervalMilliseconds,
                batchesCompleted: live.statistics.completed, batchesFailed: live.statistics.failed,
                records: live.statistics.records, restarts: live.record.restarts, averages: live.statistics.averages,
                partitions: live.statistics.partitionList, lastBatch: live.statistics.batches.last
            )
        }
        return JSONResponse.encode(view)
    }

    /// Spark's `.../streaming/batches`: the last batches, newest first (`size`, default 100; `status` filters).
    private func batches(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let batch = try batch(context)
        let query = request.uri.queryParameters
        let size = max(0, query.get("size", as: Int.self) ?? 100)
        let status = query.get("status")
        let list = batch.live.withLock { live in
            live.statistics.batches.reversed().filter { status == nil || $0.status == status }.prefix(size)
        }
        return JSONResponse.encode(BatchesView(id: batch.id, batches: Array(list)))
    }

    struct StatisticsView: Encodable {
        var id: Int
        var name: String
        var state: String
        var startTime: Int64?
        var batchIntervalMilliseconds: Int?
        var batchesCompleted: Int
        var batchesFailed: Int
        var records: Int
        var restarts: Int
        var averages: BatchStatistics.Averages
        var partitions: [BatchStatistics.Partition]
        var lastBatch: BatchStatistics.Batch?
    }

    struct BatchesView: Encodable {
        var id: Int
        var batches: [BatchStatistics.Batch]
    }
}
