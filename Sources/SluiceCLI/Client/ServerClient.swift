import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A client of `sluice serve`'s Livy API, for the command-line tools: one request at a time, JSON in and out, and the
/// server's refusals as errors that carry its message.
///
/// It speaks HTTP through AsyncHTTPClient (NIO, and NIOSSL for https) rather than URLSession: FoundationNetworking
/// would link libcurl and some thirty libraries behind it into `sluice`, and loading them is paid by every command's
/// start-up, `sluice run` included. Made by `ServerOptions.withClient`, which shuts its HTTP client down.
struct ServerClient: Sendable {
    let base: URL
    /// The `Authorization` header's value, when the server wants credentials.
    var authorization: String?
    let http: HTTPClient

    /// A failure to reach the server, or its refusal.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The most of an answer that is read: a page of a thousand log lines is far less.
    static let answerLimit = 64 << 20

    /// The HTTP client's settings. 30 s without progress, connecting or reading, is a failure (as URLRequest's
    /// `timeoutInterval`). A refused connection fails at once: AsyncHTTPClient would otherwise retry it until the
    /// timeout, and `sluice status` against a server that is not running would wait for nothing.
    static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(30), read: .seconds(30)))
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// `METHOD path` with an optional JSON body; the decoded answer, or a `Failure` saying what went wrong.
    func send<Answer: Decodable>(
        _ method: String, _ path: String, body: [String: Any]? = nil, as type: Answer.Type = Answer.self
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: base.absoluteString.trimmingSuffix("/") + path)
        request.method = HTTPMethod(rawValue: method)
        // Livy's clients send it; a server behind a CSRF guard expects it.
        request.headers.add(name: "X-Requested-By", value: "sluice")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let status: UInt
        let data: Data
        do {
            // No deadline for the whole exchange: the configuration's timeouts end one that stops making progress.
            let response = try await http.execute(request, deadline: .distantFuture)
            status = response.status.code
            data = Data(try await response.body.collect(upTo: Self.answerLimit).readableBytesView)
        } catch {
            throw Failure(description: "cannot reach the server at \(base.absoluteString): \(Self.reason(error)) (is `sluice serve` running? --server names another)")
        }
        if status == 401 {
            let hint = authorization == nil ? "give --token-file" : "the token in --token-file is not one it accepts"
            throw Failure(description: "\(method) \(path): the server answered 401: authentication required (\(hint))")
        }
        guard (200..<300).contains(status) else {
            let message = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["msg"] as? String
            throw Failure(description: "\(method) \(path): the server answered \(status): \(message ?? String(decoding: data.prefix(500), as: UTF8.self))")
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw Failure(description: "\(method) \(path): the server's answer is not what sluice expects (\(error)); is \(base.absoluteString) a sluice server?")
        }
    }

    /// Why a request got no answer, in words: NIO's errors describe themselves as type dumps.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as HTTPClientError: error.shortDescription
        case let error as NIOConnectionError:
            if error.dnsAError != nil || error.dnsAAAAError != nil {
                "cannot resolve host \(error.host)"
            } else {
                error.connectionErrors.first.map { reason($0.error) } ?? "\(error)"
            }
        case let error as IOError: String(cString: strerror(error.errnoCode))
        // NIOSSL reports a certificate that is not trusted as a dump of BoringSSL's error queue.
        case let error where "\(error)".contains("CERTIFICATE_VERIFY_FAILED"):
            "TLS handshake failed: the server's certificate is not trusted (CERTIFICATE_VERIFY_FAILED)"
        default: "\(error)"
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}

/// The API's answers, as far as the tools read them.
enum ServerAPI {
    /// Livy's batch object.
    struct Batch: Decodable {
        var id: Int
        var name: String?
        var state: String
        var appId: String?
        var appInfo: [String: String?]?
        var log: [String]?

        var isFinal: Bool { ["success", "dead", "killed"].contains(state) }
    }

    struct BatchList: Decodable {
        var from: Int
        var total: Int
        var sessions: [Batch]
    }

    struct LogPage: Decodable {
        var from: Int
        var total: Int
        var log: [String]
    }

    struct Deleted: Decodable {
        var msg: String
    }

    /// `/batches/{id}/streaming/statistics`.
    struct Statistics: Decodable {
        struct Averages: Decodable {
            var inputRate: Double?
            var schedulingDelayMilliseconds: Double?
            var processingMilliseconds: Double?
            var totalDelayMilliseconds: Double?
        }

        struct LastBatch: Decodable {
            var id: UInt64
            var status: String
            var records: Int?
            var processingMilliseconds: Double?
            var schedulingDelayMilliseconds: Double?
            var totalDelayMilliseconds: Double?
        }

        var name: String
        var state: String
        var startTime: Int64?
        var batchIntervalMilliseconds: Int?
        var batchesCompleted: Int
        var batchesFailed: Int
        var records: Int
        var restarts: Int
        var averages: Averages
        var lastBatch: LastBatch?
    }
}
