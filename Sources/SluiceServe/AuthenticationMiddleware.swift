import HTTPTypes
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
        // One header per scheme: browsers (Chromium) do not read two challenges in one header, and then never ask
        // for the basic user and password.
        response.headers.append(HTTPField(name: .wwwAuthenticate, value: "Basic realm=\"sluice\""))
        response.headers.append(HTTPField(name: .wwwAuthenticate, value: "Bearer realm=\"sluice\""))
        return response
    }
}
