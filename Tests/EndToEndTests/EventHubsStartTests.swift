import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The eventhubs source at start and across a restart of the service: empty partitions, a namespace that is down
/// at start, a consumer group refused late, and one connection per namespace after a restart.
extension EventHubsPipelineTests {
    /// A pipeline over `hubs` that counts words, with the positions and timeouts given.
    static func pipeline(_ emulator: EmulatorProcess?, port: Int? = nil, hubs: [String], start: String, receiveTimeoutMs: Int = 20000, output: URL) -> String {
        """
        name: eventhubs-start
        batch_interval: 100ms
        sources:
          events:
            plugin: eventhubs
            config:
              eventhubs.namespace: "127.0.0.1:\(port ?? emulator!.port)"
              eventhubs.name: [\(hubs.joined(separator: ", "))]
              eventhubs.policyname: RootManageSharedAccessKey
              eventhubs.policykey: SAS_KEY_VALUE
              eventhubs.useDevelopmentEmulator: true
              eventhubs.startingPosition: \(start)
              eventhubs.maxRate: \(maxRate)
              eventhubs.receiveTimeoutMs: \(receiveTimeoutMs)
        stages:
          words: {from: events, plugin: split}
          counts: {from: words, op: countByValue}
        sinks:
          out: {from: counts, plugin: files, config: {prefix: "\(output.path)/counts", suffix: tsv, format: tsv}}
        """
    }

    /// A port on 127.0.0.1 where nothing listens (it was free a moment ago).
    static func closedPort() throws -> Int {
        let (fd, port) = try Support.listenOnLoopback()
        close(fd)
        return Int(port)
    }

    /// Partitions that have never held an event (the service reports begin -1 and last -1) start the source with
    /// `earliest` and `latest` alike, and the events produced later are read exactly once — for a hub whose
    /// partitions are all empty, and for two hubs of which one is empty.
    @Test(arguments: [("earliest", false), ("latest", false), ("earliest", true), ("latest", true)])
    func emptyPartitionsStartAndReadLaterEventsOnce(start: String, withAFullHub: Bool) throws {
        let emulator = try EmulatorProcess(["--hub", "full:2", "--hub", "empty:2", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-empty")
        defer { try? FileManager.default.removeItem(at: work) }
        var expected: [String: Int] = [:]
        if withAFullHub {
            try emulator.command("produce full 0 5 before-{p} b{i}")
            try emulator.command("produce full 1 5 before-{p} b{i}")
            if start == "earliest" {
                expected = ["before-0": 5, "before-1": 5]
                for i in 0..<5 { expected["b\(i)"] = 2 }
            }
        }
        try Self.pipeline(emulator, hubs: withAFullHub ? ["full", "empty"] : ["empty"], start: start, output: work)
            .write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", work.appendingPathComponent("p.yaml").path, "--progress", "plain"])
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        // Batches are planned over the empty partitions (the old source trapped here, on every start).
        let running = child.waitFor(timeout: 30) { child.stderr.contains("batch 2 at") || !child.process.isRunning }
        try #require(running && child.process.isRunning, "the pipeline did not run:\n\(child.stderr)")
        for partition in 0..<2 {
            try emulator.command("produce empty \(partition) 7 later-{p} l{i}")
            expected["later-\(partition)"] = 7
        }
        for i in 0..<7 { expected["l\(i)"] = 2 }
        if withAFullHub {
            try emulator.command("produce full 1 3 after-{p} a{i}")
            expected["after-1"] = 3
            for i in 0..<3 { expected["a\(i)"] = 1 }
        }
        let done = child.waitFor(timeout: 60) { Self.totals(Self.batches(work)) == expected }
        // A few more batches: nothing is read twice.
        let more = child.stderr.components(separatedBy: "batch ").count
        _ = child.waitFor(timeout: 10) { child.stderr.components(separatedBy: "batch ").count >= more + 5 }
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(done, "totals \(Self.totals(Self.batches(work))), expected \(expected):\n\(result.stderr.suffix(3000))")
        #expect(Self.totals(Self.batches(work)) == expected, "every later event exactly once")
        #expect(result.status == 0, "\(result.stderr.suffix(3000))")
    }

    /// Nothing listens when the pipeline starts: the source retries connecting with its back-off, and once the
    /// service is there it reads as usual.
    @Test func aNamespaceDownAtStartIsWaitedFor() throws {
        let port = try Self.closedPort()
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-down")
        defer { try? FileManager.default.removeItem(at: work) }
        try Self.pipeline(nil, port: port, hubs: ["eh1"], start: "earliest", output: work)
            .write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", work.appendingPathComponent("p.yaml").path, "--progress", "plain"])
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        let retrying = child.waitFor(timeout: 20) { child.stderr.contains("connecting: cannot connect to 127.0.0.1:\(port)") && child.stderr.contains("retrying in") }
        try #require(retrying && child.process.isRunning, "the source did not retry:\n\(child.stderr)")
        let emulator = try EmulatorProcess(["--hub", "eh1:2", "--quiet"], port: port)
        defer { emulator.stop() }
        try emulator.command("produce eh1 1 4 tag-{p} n{i}")
        let expected = ["tag-1": 4, "n0": 1, "n1": 1, "n2": 1, "n3": 1]
        let done = child.waitFor(timeout: 30) { Self.totals(Self.batches(work)) == expected }
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(done, "\(Self.totals(Self.batches(work))):\n\(result.stderr.suffix(3000))")
        #expect(result.status == 0, "\(result.stderr.suffix(3000))")
        #expect(!result.stderr.contains("refused its configuration"), "\(result.stderr.suffix(3000))")
    }

    /// A namespace that stays down: after the retry budget (eventhubs.receiveTimeoutMs) the start fails saying it is
    /// unreachable, where, how many attempts, for how long, and never printing the key.
    @Test func aNamespaceThatStaysDownIsReportedUnreachable() throws {
        let port = try Self.closedPort()
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-unreachable")
        defer { try? FileManager.default.removeItem(at: work) }
        try Self.pipeline(nil, port: port, hubs: ["eh1"], start: "earliest", receiveTimeoutMs: 2500, output: work)
            .replacingOccurrences(of: "policykey: SAS_KEY_VALUE", with: "policykey: S3cretKeyValue77")
            .write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let started = Date()
        let result = try Support.sluice(["run", work.appendingPathComponent("p.yaml").path, "--progress", "plain"], timeout: 60)
        let took = -started.timeIntervalSinceNow
        #expect(result.stderr.contains("the Event Hubs namespace at 127.0.0.1:\(port) is unreachable"), "\(result.stderr)")
        #expect(result.stderr.contains("connection attempts over") && result.stderr.contains("eventhubs.receiveTimeoutMs = 2500 ms"), "\(result.stderr)")
        #expect(result.stderr.contains("retrying in"), "the connection was retried:\n\(result.stderr)")
        #expect(took >= 2, "it retried for the budget, not failing at once (\(took) s)")
        #expect(!result.stderr.contains("S3cretKeyValue77"), "the key is never printed:\n\(result.stderr)")
        // A valid file with the service down is not a configuration error: exit 1, "could not start".
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("plugin 'eventhubs' could not start: "), "\(result.stderr)")
        #expect(!result.stderr.contains("refused its configuration"), "\(result.stderr)")
    }

    /// A service that refuses the consumer group late (the detach with the reason comes after the client's own
    /// detach): the start still fails at once with the reason, instead of a batch timing out later.
    @Test func aConsumerGroupRefusedLateFailsTheStart() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:2", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-late")
        defer { try? FileManager.default.removeItem(at: work) }
        try emulator.command("refuse-late 0.5")
        try emulator.command("produce eh1 0 3 tag-{p} n{i}")
        try emulator.command("produce eh1 1 3 tag-{p} n{i}")
        try Self.pipeline(emulator, hubs: ["eh1"], start: "earliest", output: work)
            .replacingOccurrences(of: "eventhubs.maxRate:", with: "eventhubs.consumergroup: nosuchgroup\n      eventhubs.maxRate:")
            .write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let started = Date()
        let result = try Support.sluice(["run", work.appendingPathComponent("p.yaml").path, "--until-idle", "--progress", "plain"], timeout: 90)
        let took = -started.timeIntervalSinceNow
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("The consumer group 'nosuchgroup' of 'eh1' could not be found"), "\(result.stderr)")
        #expect(took < 10, "failed at start, not after the receive timeout (\(took) s)")
    }

    /// The service restarts (down for a second) while 64 partitions are being read, and then drops every
    /// connection three times: each time every partition's task finds the connection gone at about the same moment,
    /// and still one connection replaces it. Nothing is lost or read twice.
    @Test func aRestartOfTheServiceMakesOneNewConnection() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:32", "--hub", "eh2:32", "--quiet"])
        defer { emulator.stop() }
        var counts: [Int] = []
        /// Plays a fault and waits until the source has reconnected (when its next batch needs the connection).
        func reconnecting(after fault: String) throws {
            let before = try emulator.acceptedConnections()
            counts.append(before)
            try emulator.command(fault)
            let deadline = Date().addingTimeInterval(20)
            while try emulator.acceptedConnections() == before, Date() < deadline { usleep(20_000) }
        }
        let (done, result, work, expected) = try Self.countThrough(emulator, "restart") {
            try reconnecting(after: "restart 1")
        } after: {
            for _ in 0..<3 { try reconnecting(after: "drop") }
        }
        defer { try? FileManager.default.removeItem(at: work) }
        counts.append(try emulator.acceptedConnections())
        #expect(done, "totals after the restart differ; stderr:\n\(result.stderr.suffix(3000))")
        #expect(result.status == 0, "\(result.stderr.suffix(3000))")
        #expect(Self.totals(Self.batches(work)) == expected, "after the stop: every event exactly once")
        #expect(result.stderr.contains("retrying"), "the restart was seen:\n\(result.stderr.suffix(2000))")
        // Accepted connections before the restart, before each drop, and at the end: one more each time.
        #expect(counts == [1, 2, 3, 4, 5], "connections accepted: \(counts)")
    }
}
