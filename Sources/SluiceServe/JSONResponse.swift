import Foundation
import Hummingbird

/// JSON answers: Livy's objects are built as dictionaries (their `null`s matter to its clients), the statistics
/// as `Encodable` values.
enum JSONResponse {
    static func make(_ status: HTTPResponse.Status = .ok, _ object: Any, headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return body(status, data, headers: headers)
    }

    static func encode(_ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return body(.ok, data, headers: [:])
    }

    static func error(_ error: ServeError) -> Response {
        make(error.status, ["msg": error.message])
    }

    private static func body(_ status: HTTPResponse.Status, _ data: Data, headers: HTTPFields) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
