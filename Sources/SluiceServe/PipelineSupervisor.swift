import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs every submitted pipeline in a child process of its own (`sluice run`), follows it through its event stream
/// and log, decides what its end means (`success`, `dead`, `killed`, or a restart with back-off), keeps the records
/// under the data directory, and starts again at the server's start the pipelines that were running.
///
/// A swift-service-lifecycle `Service`: `run()` watches the children's memory until the graceful shutdown, then
/// stops every child (SIGTERM, then SIGKILL after the stop timeout) and returns. A pipeline stopped that way keeps
/// its recorded state, so the next start of the server resumes it from its checkpoint.
public final class PipelineSupervisor: Service, Sendable {
    private let configuration: ServeConfiguration
    private let store: BatchStore
    /// Held for the supervisor's life: one server per data directory.
    private let lock: DataDirectoryLock
    private let logger: Logger
    private let factory: any MetricsFactory
    private let registry: Mutex<Registry>
    /// Set when the server stops: children that end then keep their recorded state, nothing new starts.
    private let stopping = Atomic(false)
    private let recovered = Atomic(false)
    private let submissions: Counter

    private struct Registry: Sendable {
        var batches: [Int: ManagedBatch] = [:]
        var nextID = 0
    }

    /// - Parameter factory: where the pipelines' metrics go (the server's Prometheus registry).
    public init(configuration: ServeConfiguration, metricsFactory: any MetricsFactory, logger: Logger) throws {
        self.configuration = configuration
        lock = try DataDirectoryLock(configuration.dataDirectory)
        store = try BatchStore(dataDirectory: configuration.dataDirectory)
        self.logger = logger
        factory = metricsFactory
        submissions = Counter(label: "sluice_serve_submissions_total", factory: metricsFactory)
        // Loaded here, before the API answers, so that a new batch never takes the id of a kept one.
        let (records, problems) = store.load()
        for problem in problems { logger.error("unreadable batch record", metadata: ["problem": "\(problem)"]) }
        var registry = Registry()
        for record in records {
            registry.batches[record.id] = Self.makeBatch(record, configuration: configuration, store: store, factory: metricsFactory)
            registry.nextID = max(registry.nextID, record.id + 1)
        }
        self.registry = Mutex(registry)
    }

    /// The server listens and the pipelines that were running have been started again.
    public var isReady: Bool { recovered.load(ordering: .acquiring) && !stopping.load(ordering: .acquiring) }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.configuration.memoryCheckInterval)
                self.checkMemory()
            }
        }
        await stopAll()
    }

    // MARK: - Recovery

    /// Starts again every kept batch that was not final: it was running when the server stopped. Called once the
    /// server listens.
    public func recover() {
        guard !recovered.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let resumed = allBatches.filter { batch in batch.live.withLock { !$0.record.state.isFinal } }
        for batch in resumed {
            logger.info("resuming a pipeline that was running", metadata: ["batch.id": "\(batch.id)"])
            start(batch, note: "sluice serve: started again after a server restart; resuming from the checkpoint")
        }
    }

    private func makeBatch(_ record: BatchRecord) -> ManagedBatch {
        Self.makeBatch(record, configuration: configuration, store: store, factory: factory)
    }

    private static func makeBatch(
        _ record: BatchRecord, configuration: ServeConfiguration, store: BatchStore, factory: any MetricsFactory
    ) -> ManagedBatch {
        ManagedBatch(
            record: record,
            metrics: PipelineMetrics(pipeline: record.name, id: record.id, factory: factory),
            log: LogTail(kept: configuration.logLinesKept, file: store.logFile(record.id), fileLimit: configuration.logFileBytes),
            statistics: BatchStatistics(kept: configuration.batchesKept)
        )
    }

    // MARK: - Submitting, reading, stopping

    /// Records a checked submission and starts its child.
    func submit(_ request: BatchRequest) throws(ServeError) -> BatchSnapshot {
        guard !stopping.load(ordering: .acquiring) else { throw .unavailable("the server is stopping") }
        let id = registry.withLock { registry in
            defer { registry.nextID += 1 }
            return registry.nextID
        }
        let file: String
        do {
            switch request.pipeline {
            case .file(let path):
                _ = try store.prepare(id, inlinePipeline: nil)
                file = path
            case .inline(let text):
                file = try store.prepare(id, inlinePipeline: text) ?? ""
            }
        } catch {
            throw .internalError("cannot keep the batch under the data directory: \(error)")
        }
        let record = BatchRecord(
            id: id, name: request.name, file: file, arguments: request.arguments, settings: request.settings,
            parallelism: request.parallelism, memoryLimitBytes: request.memoryLimitBytes,
            restartOnFailure: request.restartOnFailure, submitted: Date(), state: .starting, cause: nil, restarts: 0
        )
        do {
            try store.save(record)
        } catch {
            throw .internalError("cannot keep the batch under the data directory: \(error)")
        }
        let batch = makeBatch(record)
        registry.withLock { $0.batches[id] = batch }
        submissions.increment()
        logger.info("batch submitted", metadata: ["batch.id": "\(id)", "pipeline.id": "\(request.name)"])
        start(batch, note: nil)
        return snapshot(batch)
    }

    func batch(_ id: Int) throws(ServeError) -> ManagedBatch {
        guard let batch = registry.withLock({ $0.batches[id] }) else { throw .notFound(batch: id) }
        return batch
    }

    var allBatches: [ManagedBatch] {
        registry.withLock { $0.batches.values.sorted { $0.id < $1.id } }
    }

    func snapshot(_ batch: ManagedBatch) -> BatchSnapshot {
        batch.live.withLock { BatchSnapshot($0) }
    }

    /// DELETE: a batch that runs is stopped gracefully (the batch in flight finishes and commits; SIGKILL after the
    /// stop timeout) and ends `killed`; one already ended is forgotten, its directory removed.
    func delete(_ id: Int) async throws(ServeError) {
        let batch = try batch(id)
        enum Action { case forget, wait(ChildProcess), done }
        let action: Action = batch.live.withLock { live in
            if live.record.state.isFinal { return .forget }
            live.stopRequested = true
            if let child = live.child {
                child.signal(SIGTERM)
                return .wait(child)
            }
            // Waiting for a restart: nothing runs, so it is killed now.
            live.restartPending = false
            live.record.state = .killed
            persist(live.record)
            return .done
        }
        switch action {
        case .forget:
            registry.withLock { _ = $0.batches.removeValue(forKey: id) }
            batch.metrics.destroy()
            try? store.remove(id)
            logger.info("batch deleted", metadata: ["batch.id": "\(id)"])
        case .wait(let child):
            await waitForExit(batch, child: child)
            logger.info("batch stopped", metadata: ["batch.id": "\(id)"])
        case .done:
            break
        }
    }

    /// Waits until the child ended, sending SIGKILL once the stop timeout has passed.
    private func waitForExit(_ batch: ManagedBatch, child: ChildProcess) async {
        let timeout = configuration.stopTimeout
        let killer = Task {
            try await Task.sleep(for: timeout)
            child.signal(SIGKILL)
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            batch.live.withLock { live in
                if live.child === child {
                    live.exitWaiters.append(continuation)
                } else {
                    continuation.resume()
                }
            }
        }
        killer.cancel()
    }

    // MARK: - Children

    private func arguments(_ record: BatchRecord) -> [String] {
        var arguments = [
            "run", record.file, "--events-fd", "3", "--log-format", "json", "--progress", "none", "--checkpoint-dir",
            store.checkpointDirectory(record.id).path,
        ]
        for directory in configuration.pluginDirectories { arguments += ["--plugin-dir", directory.path] }
        for setting in record.settings { arguments += ["--set", setting] }
        if let parallelism = record.parallelism { arguments += ["--parallelism", String(parallelism)] }
        return arguments + record.arguments
    }

    private var childEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_PLUGIN_PATH"] = nil
        for (key, value) in configuration.childEnvironment { environment[key] = value }
        return environment
    }

    /// Starts the batch's child; a failure to start it makes the batch `dead`.
    private func start(_ batch: ManagedBatch, note: String?) {
        guard !stopping.load(ordering: .acquiring) else { return }
        // The lock is held across the spawn, so no event of the new child is handled before it is recorded.
        batch.live.withLock { live in
            guard live.child == nil, !live.stopRequested else { return }
            if let note { live.log.append(note, isError: false) }
            live.record.state = .starting
            do {
                let child = try ChildProcess(
                    executable: configuration.executable.path, arguments: arguments(live.record),
                    environment: childEnvironment,
                    onLine: { [weak self, weak batch] stream, line in
                        guard let self, let batch else { return }
                        self.received(line, on: stream, batch)
                    },
                    onExit: { [weak self, weak batch] exit in
                        guard let self, let batch else { return }
                        self.ended(batch, exit)
                    }
                )
                live.child = child
                live.startedAt = Date()
                live.memoryExceededBytes = nil
            } catch {
                live.record.state = .dead
                live.record.cause = "cannot start \(configuration.executable.path): \(error)"
                logger.error("cannot start a pipeline", metadata: ["batch.id": "\(batch.id)", "error": "\(error)"])
            }
            persist(live.record)
        }
    }

    private func received(_ line: String, on stream: ChildProcess.Stream, _ batch: ManagedBatch) {
        guard stream == .events else {
            batch.live.withLock { $0.log.append(line, isError: stream == .error) }
            return
        }
        guard let event = try? JSONDecoder().decode(BatchEventLine.self, from: Data(line.utf8)) else {
            logger.warning("unreadable event from a pipeline", metadata: ["batch.id": "\(batch.id)", "line": "\(line)"])
            return
        }
        batch.metrics.record(event)
        batch.live.withLock { live in
            live.statistics.apply(event)
            if event.event == .batchCompleted { live.failuresInARow = 0 }
            if live.record.state == .starting, !live.stopRequested {
                live.record.state = .running
                persist(live.record)
            }
        }
    }

    /// The child ended and its streams were read to the end: decide what that means.
    private func ended(_ batch: ManagedBatch, _ exit: ChildProcess.Exit) {
        var restartAfter: Duration?
        let waiters: [CheckedContinuation<Void, Never>] = batch.live.withLock { live in
            let waiters = live.exitWaiters
            live.exitWaiters = []
            live.child = nil
            live.log.close()
            if stopping.load(ordering: .acquiring) && !live.stopRequested {
                // Stopped with the server: the record keeps its state, and the next start resumes it.
                live.log.append("sluice serve: stopped with the server (\(exit))", isError: false)
                return waiters
            }
            if live.stopRequested {
                live.record.state = .killed
            } else if exit == .exited(0) && live.memoryExceededBytes == nil {
                live.record.state = .success
            } else {
                var cause = Self.cause(exit, memory: live.memoryExceededBytes, limit: live.record.memoryLimitBytes, log: live.log)
                // `sluice run` exits 2 for an invalid pipeline or plugin configuration: the same file fails the same
                // way every time, so a restart would only loop.
                let invalid = exit == .exited(2)
                if invalid && live.record.restartOnFailure { cause = "not restarted: the configuration is invalid; " + cause }
                live.record.cause = cause
                if live.record.restartOnFailure && !invalid {
                    live.failuresInARow += 1
                    live.record.restarts += 1
                    live.record.state = .starting
                    live.restartPending = true
                    let delay = RestartBackoff.delay(
                        failuresInARow: live.failuresInARow, initial: configuration.restartInitialDelay,
                        maximum: configuration.restartMaximumDelay
                    )
                    restartAfter = delay
                    live.log.append("sluice serve: \(exit); restarting in \(delay) (restart \(live.record.restarts))", isError: false)
                    batch.metrics.restarts.increment()
                } else {
                    live.record.state = .dead
                }
            }
            logger.info(
                "pipeline ended",
                metadata: ["batch.id": "\(batch.id)", "exit": "\(exit)", "state": "\(live.record.state.rawValue)"]
            )
            persist(live.record)
            return waiters
        }
        for waiter in waiters { waiter.resume() }
        if let restartAfter {
            // A callback from the waiting thread bridged to async (style 6.5): the one unstructured task here.
            Task { [weak self, weak batch] in
                try? await Task.sleep(for: restartAfter)
                guard let self, let batch else { return }
                let due = batch.live.withLock { live in
                    defer { live.restartPending = false }
                    return live.restartPending && !live.stopRequested
                }
                if due { self.start(batch, note: nil) }
            }
        }
    }

    /// Why a child died: how it ended, the memory limit if that was it, and its last lines on standard error.
    static func cause(_ exit: ChildProcess.Exit, memory: Int64?, limit: Int64?, log: LogTail) -> String {
        var cause = "\(exit)"
        if let memory, let limit {
            cause += ": killed by sluice serve: resident memory \(memory) bytes over the limit of \(limit) bytes"
        }
        let last = log.lastErrors.suffix(5)
        if !last.isEmpty { cause += "; last log lines:\n" + last.joined(separator: "\n") }
        return cause
    }

    private func persist(_ record: BatchRecord) {
        do {
            try store.save(record)
        } catch {
            logger.error("cannot save a batch record", metadata: ["batch.id": "\(record.id)", "error": "\(error)"])
        }
    }

    // MARK: - Memory

    /// Kills every child whose resident memory is over its limit; records every child's resident memory.
    private func checkMemory() {
        for batch in allBatches {
            batch.live.withLock { live in
                guard let child = live.child, let resident = Self.residentBytes(child.pid) else { return }
                batch.metrics.residentBytes.record(resident)
                if let limit = live.record.memoryLimitBytes, resident > limit, live.memoryExceededBytes == nil {
                    live.memoryExceededBytes = resident
                    live.log.append(
                        "sluice serve: resident memory \(resident) bytes is over the limit of \(limit) bytes: SIGKILL",
                        isError: true
                    )
                    child.signal(SIGKILL)
                }
            }
        }
    }

    /// `VmRSS` of /proc/PID/status, in bytes.
    static func residentBytes(_ pid: pid_t) -> Int64? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kilobytes = Int64(fields[1]) { return kilobytes * 1024 }
        }
        return nil
    }

    // MARK: - Stopping the server

    /// SIGKILL to every child, without waiting; the records keep their states, so the next start resumes them.
    func killAll() {
        stopping.store(true, ordering: .releasing)
        for batch in allBatches { batch.live.withLock { $0.child }?.signal(SIGKILL) }
    }

    /// SIGTERM to every child, then waits for each (SIGKILL after the stop timeout).
    private func stopAll() async {
        stopping.store(true, ordering: .releasing)
        let running = allBatches.compactMap { batch in batch.live.withLock { $0.child }.map { (batch, $0) } }
        logger.info("stopping pipelines", metadata: ["count": "\(running.count)"])
        for (_, child) in running { child.signal(SIGTERM) }
        await withTaskGroup(of: Void.self) { group in
            for (batch, child) in running {
                group.addTask { await self.waitForExit(batch, child: child) }
            }
        }
    }
}
