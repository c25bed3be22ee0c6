import Hummingbird

/// Refuses every request without valid credentials with 401 and no detail (which part was wrong helps only an
/// attacker), except `/health` and `/ready`: probes of a supervisor or load balancer carry no credentials, and they
/// reveal nothing.
struct AuthenticationMiddleware<Context: RequestContext>: RouterMiddleware {
    let credentials: ServeCredentials
    let basePath: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == basePath + "/health" || path == basePath + "/ready" || credentials.admits(request.headers[.authorization]) {
            return try await next(request, context)
        }
        var response = JSONResponse.make(.unauthorized, ["msg": "authentication required"])
        response.headers[.wwwAuthenticate] = "Bearer realm=\"sluice\", Basic realm=\"sluice\""
        return response
    }
}
