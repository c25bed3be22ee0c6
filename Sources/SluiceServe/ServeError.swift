import Hummingbird

/// A request the server refuses, answered as Livy answers errors: the status and `{"msg": "..."}`.
public struct ServeError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    /// The status as a number (what a client sees).
    public var statusCode: Int { status.code }

    static func badRequest(_ message: String) -> ServeError { ServeError(.badRequest, message) }
    static func internalError(_ message: String) -> ServeError { ServeError(.internalServerError, message) }
    static func unavailable(_ message: String) -> ServeError { ServeError(.serviceUnavailable, message) }
    static func notFound(batch id: Int) -> ServeError { ServeError(.notFound, "Session '\(id)' not found.") }
}
