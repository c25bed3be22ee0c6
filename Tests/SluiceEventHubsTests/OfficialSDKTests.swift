import EventHubsEmulator
import Foundation
import NIOCore
import SluiceEventHubs
import Testing

/// Runs `Tests/EventHubsSDK/sdk_roundtrip.py` (the official `azure-eventhub` SDK, from the `python3` on PATH) against
/// an emulator started in this process, and returns its JSON lines. Its output goes to files (a pipe that fills up
/// would stop it), and a run that outlives `timeout` seconds is killed and fails the test.
func runOfficialSDK(_ command: String, connectionString: String, hub: String, extra: [String] = [], timeout: Double = 120) throws -> [[String: Any]] {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("EventHubsSDK/sdk_roundtrip.py")
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-sdk-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script.path, command, connectionString, hub] + extra
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    let timedOut = process.isRunning
    if timedOut {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
    let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    try #require(!timedOut, "sdk_roundtrip.py \(command) did not finish within \(timeout) s; killed. stderr:\n\(stderr)")
    if stderr.contains("No module named 'azure'") {
        Issue.record("the official SDK (azure-eventhub 5.15.1) is missing from the python3 on PATH: run the tests with scripts/test, which provides it")
    }
    try #require(process.terminationStatus == 0, "sdk_roundtrip.py \(command) failed:\n\(stderr)")
    return try String(decoding: Data(contentsOf: outURL), as: UTF8.self).split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
}

/// The official Azure SDK agrees with the emulator: what its producer sends (to partitions, by partition key, in
/// batches, alone, across several frames), its consumer reads back with the right sequence numbers, offsets, bodies
/// and properties, and its management calls see the same partitions.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct OfficialSDKTests {
    static func withEmulator(partitions: Int = 4, _ body: (EventHubsEmulator, String) async throws -> Void) async throws {
        let emulator = try EventHubsEmulator(configuration: EmulatorConfiguration(hubs: [.init(name: "eh1", partitionCount: partitions)]))
        let port = try await emulator.start(port: 0)
        let connection = "Endpoint=sb://127.0.0.1:\(port);SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
        do {
            try await body(emulator, connection)
        } catch {
            try await emulator.stop()
            throw error
        }
        try await emulator.stop()
    }

    @Test func theOfficialProducerAndConsumerAgreeWithTheEmulator() async throws {
        try await Self.withEmulator { _, connection in
            let sent = try runOfficialSDK("produce", connectionString: connection, hub: "eh1")
            #expect(sent.count == 10)
            let received = try runOfficialSDK("consume", connectionString: connection, hub: "eh1", extra: ["10"])
            #expect(received.count == 10)

            var byPartition: [String: [[String: Any]]] = [:]
            for event in received { byPartition[event["partition"] as! String, default: []].append(event) }
            // Sequence numbers from 0, in order, offsets rising from "0", per partition.
            for (partition, events) in byPartition {
                let sequence = events.map { $0["sequence_number"] as! Int }
                #expect(sequence == Array(0..<events.count), "partition \(partition): \(sequence)")
                let offsets = events.map { Int($0["offset"] as! String)! }
                #expect(offsets.first == 0 && zip(offsets, offsets.dropFirst()).allSatisfy { $0 < $1 }, "partition \(partition): \(offsets)")
            }
            // The batch to partition 0, with its properties.
            let p0 = byPartition["0"] ?? []
            #expect(p0.map { $0["body"] as? String } == (0..<5).map { "p0-event-\($0)" })
            #expect(p0.map { ($0["properties"] as? [String: Any])?["i"] as? Int } == [0, 1, 2, 3, 4])
            #expect(p0.allSatisfy { ($0["properties"] as? [String: Any])?["kind"] as? String == "batch" })
            // The event sent alone to partition 1.
            #expect((byPartition["1"] ?? []).map { $0["body"] as? String } == ["alone"])
            // The keyed batch: one partition, in order, with its key.
            let keyed = received.filter { ($0["partition_key"] as? String) == "user-7" }
            #expect(keyed.map { $0["body"] as? String } == ["keyed-0", "keyed-1", "keyed-2"])
            #expect(Set(keyed.map { $0["partition"] as! String }).count == 1)
            // The 100 000-byte event, across frames.
            #expect(received.contains { $0["partition"] as? String == "2" && $0["size"] as? Int == 100_000 })

            let properties = try runOfficialSDK("properties", connectionString: connection, hub: "eh1")
            #expect(properties.first?["partition_ids"] as? [String] == ["0", "1", "2", "3"])
            for partition in properties.dropFirst() {
                let id = partition["partition"] as! String
                let count = byPartition[id]?.count ?? 0
                #expect(partition["last_enqueued_sequence_number"] as? Int == count - 1, "partition \(id)")
                #expect(partition["beginning_sequence_number"] as? Int == (count == 0 ? -1 : 0), "partition \(id)")
                #expect(partition["is_empty"] as? Bool == (count == 0))
                if let last = byPartition[id]?.last { #expect(partition["last_enqueued_offset"] as? String == last["offset"] as? String) }
            }
        }
    }

    /// A partition that has never held an event reads as the service reports it: begin and last sequence number -1,
    /// offset "-1", empty; once it holds events, it begins at 0. Every field the official SDK's
    /// `get_partition_properties` and `get_eventhub_properties` return is checked, and Sluice's client reads the same.
    @Test func emptyPartitionsLookAsTheyDoOnTheService() async throws {
        try await Self.withEmulator(partitions: 2) { emulator, connection in
            let before = try runOfficialSDK("properties", connectionString: connection, hub: "eh1")
            try #require(before.count == 3, "\(before)")
            #expect(Set(before[0].keys) == ["eventhub_name", "created_at", "partition_ids", "hub"], "\(before[0])")
            #expect(before[0]["eventhub_name"] as? String == "eh1" && before[0]["partition_ids"] as? [String] == ["0", "1"])
            let fields: Set<String> = [
                "eventhub_name", "id", "beginning_sequence_number", "last_enqueued_sequence_number", "last_enqueued_offset",
                "last_enqueued_time_utc", "is_empty", "partition",
            ]
            for (index, partition) in before.dropFirst().enumerated() {
                #expect(Set(partition.keys) == fields, "\(partition)")
                #expect(partition["eventhub_name"] as? String == "eh1" && partition["id"] as? String == "\(index)")
                #expect(partition["beginning_sequence_number"] as? Int == -1, "\(partition)")
                #expect(partition["last_enqueued_sequence_number"] as? Int == -1, "\(partition)")
                #expect(partition["last_enqueued_offset"] as? String == "-1", "\(partition)")
                #expect(partition["is_empty"] as? Bool == true, "\(partition)")
                #expect(partition["last_enqueued_time_utc"] as? String == "1970-01-01T00:00:00+00:00", "\(partition)")
            }

            try emulator.produce(hub: "eh1", partition: 0, bodies: [Array("a".utf8), Array("b".utf8), Array("c".utf8)])
            let after = try runOfficialSDK("properties", connectionString: connection, hub: "eh1")
            try #require(after.count == 3, "\(after)")
            #expect(after[1]["beginning_sequence_number"] as? Int == 0 && after[1]["last_enqueued_sequence_number"] as? Int == 2, "\(after[1])")
            #expect(after[1]["is_empty"] as? Bool == false && after[1]["last_enqueued_offset"] as? String != "-1", "\(after[1])")
            #expect((after[1]["last_enqueued_time_utc"] as? String)?.hasPrefix("1970") == false, "\(after[1])")
            #expect(after[2]["beginning_sequence_number"] as? Int == -1 && after[2]["is_empty"] as? Bool == true, "\(after[2])")

            // Sluice's client reads what the official SDK read, field for field; the empty partition is "nothing yet,
            // next is 0" and the other holds 0..<3.
            let client = try await EventHubsClient.connect(try EventHubsConnectionString(parsing: connection), group: ClientTests.group).get()
            for record in after.dropFirst() {
                let id = record["id"] as! String
                let properties = try await client.partitionProperties(hub: "eh1", partition: id).get()
                #expect(Int(properties.beginSequenceNumber) == record["beginning_sequence_number"] as? Int, "partition \(id)")
                #expect(Int(properties.lastEnqueuedSequenceNumber) == record["last_enqueued_sequence_number"] as? Int, "partition \(id)")
                #expect(properties.lastEnqueuedOffset == record["last_enqueued_offset"] as? String, "partition \(id)")
                #expect(properties.isEmpty == record["is_empty"] as? Bool, "partition \(id)")
                #expect(properties.retained == (id == "0" ? 0..<3 : 0..<0), "partition \(id)")
            }
            try await client.close().get()
        }
    }

    @Test func aWrongKeyIsRefusedWithAnAuthenticationError() async throws {
        try await Self.withEmulator { _, connection in
            let result = try runOfficialSDK("wrong-key", connectionString: connection.replacingOccurrences(of: "SAS_KEY_VALUE", with: "WRONG"), hub: "eh1")
            #expect(result.first?["error"] as? String == "AuthenticationError", "\(result)")
            #expect((result.first?["message"] as? String)?.contains("401") == true)
        }
    }
}
