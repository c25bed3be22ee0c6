import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The Streaming tab: a page at the base path (`/`, or `/livy/` under `--base-path /livy`), its script and style
/// sheet under `ui/`, and two read-only JSON routes for what Livy's and the statistics API do not say — how long
/// a pipeline has been up, the pipelines' figures in one answer for the list, and one batch by id for its page.
/// Everything else the page shows it reads from the public API, as any client would.
///
/// The assets are compiled into the binary (`resources: [.embedInCode("Web")]`), so the server needs no files
/// beside it, and the Content-Security-Policy lets the page load nothing and talk to nothing but this server.
struct StreamingTabRoutes: Sendable {
    let supervisor: PipelineSupervisor
    let basePath: String

    /// Only this origin: the script, the style sheet and the API calls. No inline script, no frames, no forms.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func add(to router: Router<BasicRequestContext>) {
        let group = router.group(RouterPath(basePath.isEmpty ? "/" : basePath))
        let index = Self.indexPage(basePath: basePath)
        group.get("/") { _, _ in Self.asset(index, type: "text/html; charset=utf-8") }
        group.get("ui") { _, _ in Self.asset(index, type: "text/html; charset=utf-8") }
        group.get("ui/app.js") { _, _ in Self.asset(PackageResources.app_js, type: "text/javascript; charset=utf-8") }
        group.get("ui/app.css") { _, _ in Self.asset(PackageResources.app_css, type: "text/css; charset=utf-8") }
        group.get("ui/favicon.svg") { _, _ in Self.asset(PackageResources.favicon_svg, type: "image/svg+xml") }
        group.get("ui/api/pipelines") { _, _ in
            let now = Date()
            return JSONResponse.encode(
                Overview(now: Self.milliseconds(now), pipelines: supervisor.allBatches.map { Self.summary($0, now: now) })
            )
        }
        group.get("ui/api/pipelines/:id") { _, context in
            do {
                return JSONResponse.encode(Self.summary(try supervisor.batch(try Self.id(context, "id")), now: Date()))
            } catch let error as ServeError {
                return JSONResponse.error(error)
            }
        }
        group.get("ui/api/pipelines/:id/batches/:batch") { _, context in
            do {
                let pipeline = try supervisor.batch(try Self.id(context, "id"))
                let id = try Self.id(context, "batch")
                let found = pipeline.live.withLock { live in
                    live.statistics.batches.first { $0.id == UInt64(id) }
                }
                guard let found else { throw ServeError(.notFound, "Batch \(id) is not among the batches kept.") }
                return JSONResponse.encode(found)
            } catch let error as ServeError {
                return JSONResponse.error(error)
            }
        }
    }

    /// A pipeline as the list shows it: Livy's facts, the statistics' totals, and what only the server knows at
    /// this moment (how long its process has run), so that the page needs no clock of its own.
    struct Summary: Encodable {
        var id: Int
        var name: String
        var state: String
        var submitted: Int64
        /// When the current (or last) process started, ms since 1970.
        var startTime: Int64?
        /// How long the current process has run; absent once the pipeline has ended.
        var uptimeMilliseconds: Int64?
        var pid: Int32?
        var restarts: Int
        var cause: String?
        var batchIntervalMilliseconds: Int?
        var batchesCompleted: Int
        var batchesFailed: Int
        var records: Int
        /// The mean input rate of the last (up to) ten completed batches, records per second.
        var inputRate: Double?
        /// The last batch's total delay, for the list's "behind" column.
        var lastTotalDelayMilliseconds: Double?
        /// Input rates of the last (up to) 60 completed batches, oldest first, for the list's sparkline.
        var recentInputRates: [Double]
    }

    struct Overview: Encodable {
        var now: Int64
        var pipelines: [Summary]
    }

    static func summary(_ batch: ManagedBatch, now: Date) -> Summary {
        batch.live.withLock { live in
            let completed = live.statistics.batches.filter { $0.status == "completed" }
            let rates = completed.suffix(60).compactMap(\.inputRate)
            let lastTen = rates.suffix(10)
            let running = !live.record.state.isFinal && live.child != nil
            return Summary(
                id: batch.id, name: live.record.name, state: live.record.state.rawValue,
                submitted: milliseconds(live.record.submitted), startTime: live.startedAt.map(milliseconds),
                uptimeMilliseconds: running ? live.startedAt.map { milliseconds(now) - milliseconds($0) } : nil,
                pid: live.child?.pid, restarts: live.record.restarts, cause: live.record.cause,
                batchIntervalMilliseconds: live.statistics.batchIntervalMilliseconds,
                batchesCompleted: live.statistics.completed, batchesFailed: live.statistics.failed,
                records: live.statistics.records,
                inputRate: lastTen.isEmpty ? nil : lastTen.reduce(0, +) / Double(lastTen.count),
                lastTotalDelayMilliseconds: completed.last?.totalDelayMilliseconds, recentInputRates: Array(rates)
            )
        }
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    private static func id(_ context: BasicRequestContext, _ name: String) throws(ServeError) -> Int {
        let text = context.parameters.get(name) ?? ""
        guard let id = Int(text) else { throw ServeError.badRequest("\(name) must be an integer, not '\(text)'") }
        return id
    }

    /// The page, with the base path in a meta tag (the script reads it: no inline script under the policy).
    static func indexPage(basePath: String) -> [UInt8] {
        let escaped = basePath.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;")
        let page = String(decoding: PackageResources.index_html, as: UTF8.self)
            .replacingOccurrences(of: "{{BASE}}", with: escaped)
        return Array(page.utf8)
    }

    private static func asset(_ bytes: [UInt8], type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        // The assets change with the binary: revalidate rather than run yesterday's script against today's API.
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
