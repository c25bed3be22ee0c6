import Foundation

/// A batch as the API shows it at one moment, copied out of its lock: Livy's batch object, the log and statistics.
struct BatchSnapshot: Sendable {
    var record: BatchRecord
    var pid: Int32?
    var startedAt: Date?
    var logTail: [String]

    init(_ live: ManagedBatch.Live) {
        record = live.record
        pid = live.child?.pid
        startedAt = live.startedAt
        logTail = Array(live.log.lines.suffix(20))
    }

    /// Livy's `Batch`: `id`, `name`, `owner`, `proxyUser`, `state`, `appId`, `appInfo`, `log`. `appInfo` carries
    /// Sluice's own facts as strings (Livy's is a map of strings): where the log and statistics are, the process,
    /// the restarts, the checkpoint and, for a dead batch, the cause.
    func livyObject(basePath: String) -> [String: Any] {
        let id = record.id
        var info: [String: Any] = [
            "driverLogUrl": "\(basePath)/batches/\(id)/log",
            "sparkUiUrl": "\(basePath)/batches/\(id)/streaming/statistics",
            "restarts": String(record.restarts),
            "restartPolicy": record.restartOnFailure ? "on-failure" : "never",
        ]
        info["pid"] = pid.map { String($0) } ?? NSNull()
        info["cause"] = record.cause ?? NSNull()
        info["memoryLimitBytes"] = record.memoryLimitBytes.map { String($0) } ?? NSNull()
        return [
            "id": id,
            "name": record.name,
            "owner": NSNull(),
            "proxyUser": NSNull(),
            "state": record.state.rawValue,
            "appId": record.state == .starting && pid == nil && record.restarts == 0 ? NSNull() : "sluice-batch-\(id)",
            "appInfo": info,
            "log": logTail,
        ]
    }
}
