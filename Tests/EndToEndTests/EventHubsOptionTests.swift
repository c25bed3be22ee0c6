import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What docs/eventhubs.md promises of the source's options, in real pipelines: `eventhubs.startingPosition` (the
/// default `latest`, a sequence number, `@MILLISECONDS`), `eventhubs.partition.count`, `eventhubs.trustedCertificates`
/// in a pipeline file, and the partition map that keeps indices across a restart after a hub grew.
extension EventHubsPipelineTests {
    /// Milliseconds since the epoch, the emulator's clock for enqueued times.
    static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Runs `pipeline` until the source has planned two batches (its start positions are then fixed), plays
    /// `produce`, waits until the totals are `expected`, lets a few more batches run and stops it with SIGINT. Checks
    /// the totals before and after the exit, and the exit status.
    static func runUntilCounted(_ pipeline: String, in work: URL, produce: () throws -> Void, expected: () -> [String: Int]) throws {
        try pipeline.write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", work.appendingPathComponent("p.yaml").path, "--progress", "plain"])
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        let running = child.waitFor(timeout: 30) { child.stderr.contains("batch 2 at") || !child.process.isRunning }
        try #require(running && child.process.isRunning, "the pipeline did not run:\n\(child.stderr)")
        try produce()
        let want = expected()
        let done = child.waitFor(timeout: 30) { Self.totals(Self.batches(work)) == want }
        let more = child.stderr.components(separatedBy: "batch ").count
        let ran = child.waitFor(timeout: 10) { child.stderr.components(separatedBy: "batch ").count >= more + 3 }
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(done && ran, "totals \(Self.totals(Self.batches(work))), expected \(want):\n\(result.stderr.suffix(3000))")
        #expect(Self.totals(Self.batches(work)) == want, "after the stop: every event exactly once")
        #expect(result.status == 0, "\(result.stderr.suffix(3000))")
    }

    /// `eventhubs.startingPosition` for partitions without a committed position: absent (`latest`: only events
    /// enqueued after the start), a sequence number (from it; a partition that does not reach it starts at its
    /// end), and `@MILLISECONDS` (the events enqueued after that time; a partition with none starts at its end).
    /// Partitions 0 and 1 hold 6 "old" events, then, after time T, 3 "mid" ones; partition 2 holds 2 old events.
    /// Events produced once the pipeline runs are read in every case.
    @Test(arguments: ["absent", "4", "@T"])
    func startingPositionChoosesTheFirstEventRead(position: String) throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:3", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-position")
        defer { try? FileManager.default.removeItem(at: work) }
        for partition in 0..<2 { try emulator.command("produce eh1 \(partition) 6 old-{p} o{i}") }
        try emulator.command("produce eh1 2 2 old-{p} o{i}")
        // T: at or after every old event's enqueued time; the mid events are enqueued after it.
        let time = Self.nowMilliseconds()
        while Self.nowMilliseconds() <= time { usleep(200) }
        for partition in 0..<2 { try emulator.command("produce eh1 \(partition) 3 mid-{p} m{i}") }

        var expected: [String: Int] = [:]
        var pipeline = Self.pipeline(emulator, hubs: ["eh1"], start: position == "@T" ? "\"@\(time)\"" : position, output: work)
        switch position {
        case "absent":
            pipeline = pipeline.replacingOccurrences(of: "      eventhubs.startingPosition: absent\n", with: "")
            try #require(!pipeline.contains("startingPosition"))
        case "4":
            expected = ["old-0": 2, "old-1": 2, "o4": 2, "o5": 2, "mid-0": 3, "mid-1": 3, "m0": 2, "m1": 2, "m2": 2]
        default:
            expected = ["mid-0": 3, "mid-1": 3, "m0": 2, "m1": 2, "m2": 2]
        }
        try Self.runUntilCounted(pipeline, in: work) {
            for partition in 0..<3 { try emulator.command("produce eh1 \(partition) 4 late-{p} l{i}") }
        } expected: {
            for partition in 0..<3 { expected["late-\(partition)"] = 4 }
            for i in 0..<4 { expected["l\(i)"] = 3 }
            return expected
        }
    }

    /// `eventhubs.partition.count`: the start fails naming the hub that has fewer partitions (a refused
    /// configuration, exit 2); when every hub has enough, the pipeline runs.
    @Test func aHubWithFewerPartitionsThanPartitionCountFailsTheStart() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:4", "--hub", "eh2:2", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-count")
        defer { try? FileManager.default.removeItem(at: work) }
        try emulator.command("produce eh2 1 3 tag-{p} n{i}")
        let file = work.appendingPathComponent("p.yaml")
        let run = { (count: Int) throws -> Support.Result in
            try Self.pipeline(emulator, hubs: ["eh1", "eh2"], start: "earliest", output: work)
                .replacingOccurrences(of: "eventhubs.maxRate:", with: "eventhubs.partition.count: \(count)\n      eventhubs.maxRate:")
                .write(to: file, atomically: true, encoding: .utf8)
            return try Support.sluice(["run", file.path, "--until-idle", "--idle-batches", "2", "--progress", "plain"], timeout: 60)
        }
        let refused = try run(3)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("event hub 'eh2' has 2 partitions, fewer than eventhubs.partition.count (3)"), "\(refused.stderr)")
        #expect(Self.batches(work).isEmpty, "no batch ran")

        let accepted = try run(2)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(Self.totals(Self.batches(work)) == ["tag-1": 3, "n0": 1, "n1": 1, "n2": 1])
    }

    /// `eventhubs.trustedCertificates` in a pipeline file (a path relative to the file), against the emulator
    /// serving TLS with a self-signed certificate: trusted, the events are read; without the option the certificate
    /// is refused and the start fails saying so (the namespace counts as unreachable: exit 1).
    @Test func trustedCertificatesFromAPipelineFileAllowASelfSignedNamespace() throws {
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-tls")
        defer { try? FileManager.default.removeItem(at: work) }
        let script = Support.repoRoot.appendingPathComponent("Tests/EventHubsSDK/test_certificate.sh").path
        let made = try Support.run("/bin/sh", [script, work.path], timeout: 60)
        try #require(made.status == 0, "openssl could not make a test certificate:\n\(made.stderr)")
        let emulator = try EmulatorProcess([
            "--hub", "eh1:2", "--tls-certificate", work.appendingPathComponent("cert.pem").path,
            "--tls-key", work.appendingPathComponent("key.pem").path, "--quiet",
        ])
        defer { emulator.stop() }
        try emulator.command("produce eh1 0 3 tls-{p} n{i}")
        try emulator.command("produce eh1 1 2 tls-{p} n{i}")
        let file = work.appendingPathComponent("p.yaml")
        // TLS: no eventhubs.useDevelopmentEmulator.
        let pipeline = Self.pipeline(emulator, hubs: ["eh1"], start: "earliest", receiveTimeoutMs: 1500, output: work)
            .replacingOccurrences(of: "      eventhubs.useDevelopmentEmulator: true\n", with: "")
        try #require(!pipeline.contains("useDevelopmentEmulator"))

        try pipeline.replacingOccurrences(of: "eventhubs.maxRate:", with: "eventhubs.trustedCertificates: cert.pem\n      eventhubs.maxRate:")
            .write(to: file, atomically: true, encoding: .utf8)
        let trusted = try Support.sluice(["run", file.path, "--until-idle", "--idle-batches", "2", "--progress", "plain"], timeout: 60)
        #expect(trusted.status == 0, "\(trusted.stderr)")
        #expect(Self.totals(Self.batches(work)) == ["tls-0": 3, "tls-1": 2, "n0": 2, "n1": 2, "n2": 1], "\(trusted.stderr)")

        try pipeline.write(to: file, atomically: true, encoding: .utf8)
        let refused = try Support.sluice(["run", file.path, "--until-idle", "--progress", "plain"], timeout: 60)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("(TLS)") && refused.stderr.lowercased().contains("certificate"), "\(refused.stderr)")
    }

    /// The partition map in the source's state directory keeps every partition's index across a restart after a
    /// hub grew: eh1's new partitions are appended after eh2's (indices 4 and 5), so the committed positions of
    /// indices 2 and 3 still belong to eh2, and every event is read once over both runs.
    @Test func partitionNumbersSurviveARestartAfterAHubGrew() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:2", "--hub", "eh2:2", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-map")
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appendingPathComponent("p.yaml")
        let checkpoint = work.appendingPathComponent("ck")
        try Self.pipeline(emulator, output: work, checkpoint: checkpoint).write(to: file, atomically: true, encoding: .utf8)
        let run = { try Support.sluice(["run", file.path, "--until-idle", "--idle-batches", "2", "--progress", "plain"], timeout: 60) }
        var expected: [String: Int] = [:]
        func produce(_ hub: String, _ partition: Int, _ count: Int, _ tag: String) throws {
            try emulator.command("produce \(hub) \(partition) \(count) \(tag)-\(hub)-{p} n{i}")
            expected["\(tag)-\(hub)-\(partition)"] = count
            for i in 0..<count { expected["n\(i)", default: 0] += 1 }
        }
        for hub in ["eh1", "eh2"] { for partition in 0..<2 { try produce(hub, partition, 3 + partition, "a") } }
        let first = try run()
        #expect(first.status == 0, "\(first.stderr)")
        #expect(Self.totals(Self.batches(work)) == expected, "\(first.stderr)")

        try emulator.command("grow eh1 4")
        for partition in 0..<4 { try produce("eh1", partition, 2, "b") }
        for partition in 0..<2 { try produce("eh2", partition, 5, "b") }
        let second = try run()
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("2 partition(s): eh1 2"), "the two new partitions are announced:\n\(second.stderr)")
        #expect(Self.totals(Self.batches(work)) == expected, "every event of both runs exactly once:\n\(second.stderr)")

        let maps = FileManager.default.enumerator(atPath: checkpoint.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix("partitions.tsv") } ?? []
        try #require(maps.count == 1, "one partition map in the state directory: \(maps)")
        let map = try String(contentsOf: checkpoint.appendingPathComponent(maps[0]), encoding: .utf8)
        #expect(map == "0\teh1\t0\n1\teh1\t1\n2\teh2\t0\n3\teh2\t1\n4\teh1\t2\n5\teh1\t3\n", "\(map)")
    }
}
