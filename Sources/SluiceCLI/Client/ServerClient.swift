import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A client of `sluice serve`'s Livy API, for the command-line tools: one request at a time, JSON in and out, and the
/// server's refusals as errors that carry its message.
struct ServerClient: Sendable {
    let base: URL
    /// The `Authorization` header's value, when the server wants credentials.
    var authorization: String?

    /// A failure to reach the server, or its refusal.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `METHOD path` with an optional JSON body; the decoded answer, or a `Failure` saying what went wrong.
    func send<Answer: Decodable>(
        _ method: String, _ path: String, body: [String: Any]? = nil, as type: Answer.Type = Answer.self
    ) async throws -> Answer {
        let url = URL(string: base.absoluteString.trimmingSuffix("/") + path)!
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 30
        // Livy's clients send it; a server behind a CSRF guard expects it.
        request.setValue("sluice", forHTTPHeaderField: "X-Requested-By")
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await Self.session.data(for: request)
        } catch let error as URLError where error.code == .cancelled {
            let hint = authorization == nil ? "give --token-file" : "the token in --token-file is not one it accepts"
            throw Failure(description: "\(method) \(path): the server answered 401: authentication required (\(hint))")
        } catch {
            throw Failure(description: "cannot reach the server at \(base.absoluteString): \(error.localizedDescription) (is `sluice serve` running? --server names another)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
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
}

extension ServerClient {
    /// A session that declines authentication challenges: FoundationNetworking in Swift 6.3.1 otherwise waits forever
    /// on a 401 for credentials nobody offers (swift-corelibs-foundation#5456). Declined, the request ends cancelled,
    /// which `send` reports as the 401 it was.
    static let session = URLSession(configuration: .ephemeral, delegate: DeclineChallenges(), delegateQueue: nil)

    final class DeclineChallenges: NSObject, URLSessionTaskDelegate, Sendable {
        func urlSession(
            _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
            completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
        ) {
            completionHandler(.rejectProtectionSpace, nil)
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
