import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The eventhubs source in real pipelines: 2 hubs × 32 partitions in one stream, per-batch limits, faults.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct EventHubsPipelineTests {
    static let maxRate = 40

    /// Each event: `tag-HUB-P n{i}`; a batch's count of a tag is what it took from that partition.
    static func pipeline(_ emulator: EmulatorProcess, output: URL, checkpoint: URL? = nil, failOnDataLoss: Bool = true) -> String {
        """
        name: eventhubs-count
        batch_interval: 100ms
        \(checkpoint.map { "checkpoint: \"\($0.path)\"" } ?? "")
        sources:
          events:
            plugin: eventhubs
            config:
              eventhubs.namespace: "127.0.0.1:\(emulator.port)"
              eventhubs.name: [eh1, eh2]
              eventhubs.policyname: RootManageSharedAccessKey
              eventhubs.policykey: SAS_KEY_VALUE
              eventhubs.useDevelopmentEmulator: true
              eventhubs.startingPosition: earliest
              eventhubs.maxRate: \(maxRate)
              eventhubs.receiveTimeoutMs: 20000
              eventhubs.failOnDataLoss: \(failOnDataLoss)
        stages:
          words: {from: events, plugin: split}
          counts: {from: words, op: countByValue}
        sinks:
          out: {from: counts, plugin: files, config: {prefix: "\(output.path)/counts", suffix: tsv, format: tsv}}
        """
    }

    /// Per batch file, word → count.
    static func batches(_ directory: URL) -> [[String: Int]] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("counts-") && $0.hasSuffix(".tsv") }
        return names.sorted().map { name in
            var counts: [String: Int] = [:]
            let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
            for row in text.split(separator: "\n") {
                let fields = row.split(separator: "\t")
                if fields.count == 2 { counts[String(fields[0]), default: 0] += Int(fields[1]) ?? 0 }
            }
            return counts
        }
    }

    static func totals(_ batches: [[String: Int]]) -> [String: Int] {
        batches.reduce(into: [:]) { total, batch in for (word, count) in batch { total[word, default: 0] += count } }
    }

    /// Produces `perPartition` events in each of the 64 partitions; returns the expected word counts.
    static func produce(_ emulator: EmulatorProcess, perPartition: Int) throws -> [String: Int] {
        var expected: [String: Int] = [:]
        for hub in ["eh1", "eh2"] {
            for partition in 0..<32 {
                try emulator.command("produce \(hub) \(partition) \(perPartition) tag-\(hub)-{p} n{i}")
                expected["tag-\(hub)-\(partition)"] = perPartition
                for i in 0..<perPartition { expected["n\(i)", default: 0] += 1 }
            }
        }
        return expected
    }

    @Test func sixtyFourPartitionsInOneStreamAreCountedExactlyWithinMaxRate() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:32", "--hub", "eh2:32", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs")
        defer { try? FileManager.default.removeItem(at: work) }
        let expected = try Self.produce(emulator, perPartition: 100)
        try Self.pipeline(emulator, output: work).write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let result = try Support.sluice(["run", work.appendingPathComponent("p.yaml").path, "--until-idle", "--idle-batches", "3", "--progress", "plain"], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)\nemulator:\n\(emulator.stderr)")
        let batches = Self.batches(work)
        #expect(Self.totals(batches) == expected, "every event counted exactly once")
        // 100 events per partition at 40 per batch: 40, 40, 20.
        let perBatch = batches.map { batch in batch.filter { $0.key.hasPrefix("tag-") }.values.max() ?? 0 }
        #expect(perBatch.allSatisfy { $0 <= Self.maxRate }, "a batch took more than eventhubs.maxRate from a partition: \(perBatch)")
        #expect(perBatch.prefix(3) == [40, 40, 20], "\(perBatch)")
        #expect(batches.first?.filter { $0.key.hasPrefix("tag-") }.count == 64, "the first batch reads all 64 partitions")
        #expect(result.stderr.contains("64 partition(s)") || result.stderr.contains("eh1 32, eh2 32"), "\(result.stderr)")
    }

    /// Dropped connections, a stall, server-busy answers and stolen links while batches run: every batch still
    /// reads exactly its planned range, so the totals are exact and no batch exceeds the limit.
    /// Runs the pipeline over 200 events in each of the 64 partitions, plays `faults` once batch 1 has run, adds 50
    /// late events to three partitions of eh2 and plays `after`, then waits until every event is counted and stops
    /// it with SIGINT. Returns whether the totals were exact, how the run ended, its output directory and the
    /// expected totals (to check again after the exit: nothing may be read twice while stopping).
    static func countThrough(_ emulator: EmulatorProcess, _ label: String, faults: () throws -> Void, after: () throws -> Void = {}) throws -> (done: Bool, result: Support.Result, work: URL, expected: [String: Int]) {
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-\(label)")
        var expected = try Self.produce(emulator, perPartition: 200)
        try Self.pipeline(emulator, output: work).write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", work.appendingPathComponent("p.yaml").path, "--progress", "plain"])
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        let started = child.waitFor(timeout: 30) { child.stderr.contains("batch 1 at") }
        try #require(started, "\(child.stderr)")
        try faults()
        // More events while the faults play out.
        for partition in [0, 17, 31] {
            try emulator.command("produce eh2 \(partition) 50 late-{p} n{i}")
            expected["late-\(partition)"] = 50
            for i in 0..<50 { expected["n\(i)", default: 0] += 1 }
        }
        try after()
        let done = child.waitFor(timeout: 90) { Self.totals(Self.batches(work)) == expected }
        kill(child.process.processIdentifier, SIGINT)
        return (done, child.wait(timeout: 30), work, expected)
    }

    @Test func faultsDoNotLoseOrRepeatEvents() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:32", "--hub", "eh2:32", "--quiet"])
        defer { emulator.stop() }
        let (done, result, work, expected) = try Self.countThrough(emulator, "faults") {
            try emulator.command("drop")
            try emulator.command("busy 3")
            try emulator.command("steal eh1 3")
            try emulator.command("stall 1.5")
        } after: {
            try emulator.command("drop")
        }
        defer { try? FileManager.default.removeItem(at: work) }
        #expect(done, "totals after the faults differ; stderr:\n\(result.stderr.suffix(3000))")
        #expect(result.status == 0, "\(result.stderr.suffix(3000))")
        #expect(Self.totals(Self.batches(work)) == expected, "after the stop: every event exactly once")
        let perBatch = Self.batches(work).map { batch in batch.filter { $0.key.hasPrefix("tag-") || $0.key.hasPrefix("late-") }.values.max() ?? 0 }
        #expect(perBatch.allSatisfy { $0 <= Self.maxRate }, "\(perBatch)")
        #expect(result.stderr.contains("retrying"), "the faults were seen and retried:\n\(result.stderr.suffix(2000))")
    }

    @Test func anUnknownConsumerGroupFailsAtStart() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:2", "--hub", "eh2:2", "--consumer-group", "eh1/analytics", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-cg")
        defer { try? FileManager.default.removeItem(at: work) }
        // eh1 has the group, eh2 does not.
        try Self.pipeline(emulator, output: work).replacingOccurrences(of: "eventhubs.maxRate:", with: "eventhubs.consumergroup: analytics\n      eventhubs.maxRate:")
            .write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let result = try Support.sluice(["run", work.appendingPathComponent("p.yaml").path, "--until-idle", "--progress", "plain"], timeout: 60)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("The consumer group 'analytics' of 'eh2' could not be found"), "\(result.stderr)")
    }

    @Test func aWrongKeyFailsAtStartWithoutPrintingTheKey() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:2", "--hub", "eh2:2", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-key")
        defer { try? FileManager.default.removeItem(at: work) }
        try Self.pipeline(emulator, output: work).replacingOccurrences(of: "policykey: SAS_KEY_VALUE", with: "policykey: Wr0ngKeyValue42")
            .write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let result = try Support.sluice(["run", work.appendingPathComponent("p.yaml").path, "--until-idle", "--progress", "plain"], timeout: 60)
        #expect(result.status == 2, "a wrong key is a refused configuration:\n\(result.stderr)")
        #expect(result.stderr.contains("status 401"), "\(result.stderr)")
        #expect(result.stderr.contains(". Check the key name and the key") && !result.stderr.contains("signature.."), "one period:\n\(result.stderr)")
        #expect(!result.stderr.contains("Wr0ngKeyValue42"), "the key is never printed:\n\(result.stderr)")
    }

    /// Events that expire (the emulator's `expire`, as retention would) before a checkpointed pipeline reads them:
    /// the start fails naming the lost range, or with `eventhubs.failOnDataLoss: false` they are skipped with a
    /// warning and the rest is read.
    @Test func expiredEventsFollowFailOnDataLoss() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:1", "--hub", "eh2:1", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-loss")
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appendingPathComponent("p.yaml")
        let checkpoint = work.appendingPathComponent("ck")
        try Self.pipeline(emulator, output: work, checkpoint: checkpoint).write(to: file, atomically: true, encoding: .utf8)
        let run = { try Support.sluice(["run", file.path, "--until-idle", "--idle-batches", "3", "--progress", "plain"], timeout: 60) }

        try emulator.command("produce eh1 0 10 first{i}")
        let first = try run()
        #expect(first.status == 0, "\(first.stderr)")
        try emulator.command("produce eh1 0 10 lost{i}")
        try emulator.command("produce eh1 0 5 kept{i}")
        try emulator.command("expire eh1 0 20")  // the 10 unread events 10..<20 expire; 20..<25 stay

        let refused = try run()
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("events 10..<20 expired before they were read"), "\(refused.stderr)")
        #expect(refused.stderr.contains("eventhubs.failOnDataLoss: false"))

        try Self.pipeline(emulator, output: work, checkpoint: checkpoint, failOnDataLoss: false).write(to: file, atomically: true, encoding: .utf8)
        let skipped = try run()
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stderr.contains("10 events expired before they were read and are skipped"), "\(skipped.stderr)")
        let totals = Self.totals(Self.batches(work))
        #expect((0..<10).allSatisfy { totals["first\($0)"] == 1 } && (0..<5).allSatisfy { totals["kept\($0)"] == 1 }, "\(totals)")
        #expect(!totals.keys.contains { $0.hasPrefix("lost") })
    }

    /// `eventhubs.recordValue: json`: each record's value is an object with the body and what Event Hubs knows of the
    /// event — here, events the official SDK's producer sent with application properties and a partition key.
    @Test func jsonRecordsCarryPropertiesPartitionAndSequenceNumber() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:4", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-json")
        defer { try? FileManager.default.removeItem(at: work) }
        let script = Support.repoRoot.appendingPathComponent("Tests/EventHubsSDK/sdk_roundtrip.py").path
        let produced = try Support.run("/usr/bin/env", ["python3", script, "produce", emulator.connectionString, "eh1"], timeout: 120)
        try #require(produced.status == 0, "the official producer failed (the official SDK azure-eventhub 5.15.1 must be importable by python3 on PATH: run the tests with scripts/test):\n\(produced.stderr)")
        try """
            name: eventhubs-json
            batch_interval: 100ms
            sources:
              events:
                plugin: eventhubs
                config:
                  connection_string: "\(emulator.connectionString);EntityPath=eh1"
                  eventhubs.startingPosition: earliest
                  eventhubs.recordValue: json
            sinks:
              out: {from: events, plugin: files, config: {prefix: "\(work.path)/events", suffix: jsonl, format: tsv}}
            """.write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let result = try Support.sluice(["run", work.appendingPathComponent("p.yaml").path, "--until-idle", "--idle-batches", "3", "--progress", "plain"], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        var records: [[String: Any]] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: work.path) where name.hasSuffix(".jsonl") {
            for line in try String(contentsOf: work.appendingPathComponent(name), encoding: .utf8).split(separator: "\n") {
                // A keyed record is written as key<TAB>value.
                let value = line.split(separator: "\t", maxSplits: 1).last!
                records.append(try #require(try JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: Any], "\(line)"))
            }
        }
        #expect(records.count == 10)
        let batch = records.filter { $0["partition"] as? String == "0" }.sorted { ($0["sequence_number"] as! Int) < ($1["sequence_number"] as! Int) }
        #expect(batch.map { $0["body"] as? String } == (0..<5).map { "p0-event-\($0)" })
        #expect(batch.map { ($0["properties"] as? [String: Any])?["i"] as? Int } == [0, 1, 2, 3, 4])
        #expect(batch.map { $0["sequence_number"] as? Int } == [0, 1, 2, 3, 4])
        #expect(batch.allSatisfy { $0["hub"] as? String == "eh1" && $0["offset"] is String && $0["enqueued_time"] is Int })
        let keyed = records.filter { $0["partition_key"] as? String == "user-7" }
        #expect(keyed.count == 3)
        #expect(records.contains { ($0["body"] as? String)?.count == 100_000 })
    }

    /// Partitions added to a hub while the pipeline runs join the stream (after the existing ones) and are read.
    @Test func partitionsAddedWhileRunningAreRead() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:2", "--hub", "eh2:2", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-grow")
        defer { try? FileManager.default.removeItem(at: work) }
        try emulator.command("produce eh1 0 5 tag-eh1-{p} n{i}")
        try Self.pipeline(emulator, output: work).replacingOccurrences(of: "eventhubs.failOnDataLoss: true", with: "eventhubs.partitionDiscoveryMs: 300")
            .write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let child = try Support.Child(Support.sluice, ["run", work.appendingPathComponent("p.yaml").path, "--progress", "plain"])
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        #expect(child.waitFor(timeout: 30) { Self.totals(Self.batches(work))["tag-eh1-0"] == 5 }, "\(child.stderr)")
        try emulator.command("grow eh1 4")
        try emulator.command("produce eh1 3 7 tag-eh1-{p} n{i}")
        let found = child.waitFor(timeout: 30) { Self.totals(Self.batches(work))["tag-eh1-3"] == 7 }
        kill(child.process.processIdentifier, SIGINT)
        let result = child.wait(timeout: 30)
        #expect(found, "events of the new partition were not read:\n\(result.stderr)")
        #expect(result.stderr.contains("2 partition(s): eh1 2"), "the two new partitions are announced:\n\(result.stderr)")
        #expect(result.status == 0)
    }

    /// Exactly once with the headline source: a checkpointed eventhubs → split → countByValue → files pipeline killed
    /// with SIGKILL at least 10 times, each just after a new batch, writes the same bytes as an uninterrupted run, because a
    /// replayed batch reads the same sequence-number ranges.
    @Test func exactlyOnceAcrossKills() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:4", "--hub", "eh2:4", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-eventhubs-chaos")
        defer { try? FileManager.default.removeItem(at: work) }
        for hub in ["eh1", "eh2"] {
            for partition in 0..<4 { try emulator.command("produce \(hub) \(partition) 400 tag-\(hub)-{p} n{i}") }
        }
        // 400 events at 40 per batch: 10 batches with events, then empty ones. A killed run may finish more than one
        // batch before its kill lands (batches are quick), so there are enough batches for 10 kills and a last run.
        let batches = 30
        var outputs: [URL] = []
        for run in ["calm", "chaos"] {
            let out = work.appendingPathComponent("out-\(run)")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try Self.pipeline(emulator, output: out, checkpoint: work.appendingPathComponent("ck-\(run)"))
                .write(to: work.appendingPathComponent("\(run).yaml"), atomically: true, encoding: .utf8)
            outputs.append(out)
        }
        let arguments = { (run: String) in ["run", work.appendingPathComponent("\(run).yaml").path, "--batches", "\(batches)", "--progress", "plain"] }
        let calm = try Support.sluice(arguments("calm"), timeout: 120)
        try #require(calm.status == 0, "\(calm.stderr)")

        // Killed just after new batches (as ChaosTests does); once 10 kills have landed the next run may finish.
        let killed = try ChaosTests.runUnderKills(arguments("chaos"), batches: batches, stopKillingAfter: 10)
        #expect(killed >= 10)
        let expected = try ChaosTests.output(outputs[0], prefix: "counts")
        let got = try ChaosTests.output(outputs[1], prefix: "counts")
        #expect(expected.files == batches && got.files == batches, "\(expected.files) and \(got.files) files")
        #expect(got.bytes == expected.bytes, "output differs after \(killed) kills")
        #expect(Self.totals(Self.batches(outputs[1]))["tag-eh2-3"] == 400)
    }
}
