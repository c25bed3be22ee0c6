import EventHubsEmulator
import Foundation
import NIOCore
import NIOPosix
import SluiceAMQP
import SluiceEventHubs
import Testing

/// Sluice's Event Hubs client against the emulator: management reads, receivers from a position, owner levels,
/// errors — and against what the official SDK's producer sent.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ClientTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func withEmulator(hubs: [EmulatorConfiguration.Hub] = [.init(name: "eh1", partitionCount: 4)], _ body: (EventHubsEmulator, EventHubsConnectionString) async throws -> Void) async throws {
        let emulator = try EventHubsEmulator(configuration: EmulatorConfiguration(hubs: hubs))
        let port = try await emulator.start(port: 0)
        let connection = try EventHubsConnectionString(
            parsing: "Endpoint=sb://127.0.0.1:\(port);SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
        )
        do { try await body(emulator, connection) } catch {
            try await emulator.stop()
            throw error
        }
        try await emulator.stop()
    }

    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<100 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    static func receiveAll(_ receiver: PartitionReceiver, count: Int) async throws -> [EventHubsEvent] {
        try receiver.flow(credit: UInt32(count))
        var events: [EventHubsEvent] = []
        let deadline = Date().addingTimeInterval(20)
        while events.count < count && Date() < deadline {
            events += try await receiver.receive(count: count - events.count, timeout: .seconds(2)).get()
        }
        return events
    }

    @Test func readsPartitionsFromAPosition() async throws {
        try await Self.withEmulator { emulator, connection in
            try emulator.produce(hub: "eh1", partition: 2, bodies: (0..<10).map { Array("event-\($0)".utf8) }, properties: ["source": "test"])
            let client = try await EventHubsClient.connect(connection, group: Self.group).get()
            #expect(try await client.partitionIDs(hub: "eh1").get() == ["0", "1", "2", "3"])
            let properties = try await client.partitionProperties(hub: "eh1", partition: "2").get()
            #expect(properties.beginSequenceNumber == 0 && properties.lastEnqueuedSequenceNumber == 9 && !properties.isEmpty)
            let empty = try await client.partitionProperties(hub: "eh1", partition: "0").get()
            // Never held an event: -1 and -1, as the service reports it; nothing retained, the next event is 0.
            #expect(empty.isEmpty && empty.lastEnqueuedSequenceNumber == -1 && empty.beginSequenceNumber == -1 && empty.lastEnqueuedOffset == "-1")
            #expect(empty.retained == 0..<0 && properties.retained == 0..<10)

            let receiver = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "2", from: .sequenceNumber(4), runtimeMetrics: true).get()
            let events = try await Self.receiveAll(receiver, count: 6)
            #expect(events.allSatisfy { $0.lastEnqueuedSequenceNumber == 9 }, "runtime metrics: \(events.map(\.lastEnqueuedSequenceNumber))")
            #expect(events.map(\.sequenceNumber) == Array(4..<10))
            #expect(events.map { String(decoding: $0.body, as: UTF8.self) } == (4..<10).map { "event-\($0)" })
            #expect(events.allSatisfy { $0.properties?[text: "source"] == .string("test") })
            // Every delivery was settled (with ranged dispositions).
            let settled = await Self.eventually { emulator.unsettledDeliveries == 0 }
            #expect(settled, "\(emulator.unsettledDeliveries) deliveries left unsettled")
            // From an offset (exclusive): the events after the 6th.
            let byOffset = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "2", from: .offset(events[1].offset, inclusive: false)).get()
            let afterOffset = try await Self.receiveAll(byOffset, count: 4)
            #expect(afterOffset.map(\.sequenceNumber) == [6, 7, 8, 9])
            #expect(afterOffset.allSatisfy { $0.lastEnqueuedSequenceNumber == nil }, "no runtime metrics unless asked")
            try await byOffset.close().get()
            // Nothing more: a receive with credit left times out empty.
            try receiver.flow(credit: 5)
            #expect(try await receiver.receive(count: 1, timeout: .milliseconds(300)).get().isEmpty)
            // New events arrive on the open link.
            try emulator.produce(hub: "eh1", partition: 2, bodies: [Array("late".utf8)])
            let late = try await receiver.receive(count: 1, timeout: .seconds(5)).get()
            #expect(late.map(\.sequenceNumber) == [10])
            try await client.close().get()
        }
    }

    @Test func aWrongKeyFailsClearlyWithoutShowingTheKey() async throws {
        try await Self.withEmulator { _, connection in
            var wrong = connection
            wrong.credential = .sharedAccessKey(name: "RootManageSharedAccessKey", key: "not-the-key-123")
            let client = try await EventHubsClient.connect(wrong, group: Self.group).get()
            do {
                _ = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "0", from: .earliest).get()
                Issue.record("a wrong key was accepted")
            } catch let error as EventHubsError {
                #expect(error.kind == .authentication, "\(error)")
                #expect(error.message.contains("status 401"), "\(error.message)")
                #expect(!error.message.contains("not-the-key-123"), "\(error.message)")
                #expect(error.message.contains(". Check the key name and the key") && !error.message.contains(".."), "one period: \(error.message)")
            }
            try await client.close().get()
        }
    }

    @Test func errorsNameTheirCause() async throws {
        try await Self.withEmulator { emulator, connection in
            let client = try await EventHubsClient.connect(connection, group: Self.group).get()
            await #expect(throws: EventHubsError.self) { try await client.partitionIDs(hub: "nope").get() }
            do {
                let receiver = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "0", from: .sequenceNumber(50)).get()
                try receiver.flow(credit: 1)
                _ = try await receiver.receive(count: 1, timeout: .seconds(5)).get()
                Issue.record("a position past the end was accepted")
            } catch let error as EventHubsError {
                #expect(error.kind == .outOfRange, "\(error)")
            }
            // Owner levels: a higher one takes the partition.
            let first = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "1", from: .earliest, ownerLevel: 1).get()
            try first.flow(credit: 10)
            let second = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "1", from: .earliest, ownerLevel: 2).get()
            do {
                _ = try await first.receive(count: 1, timeout: .seconds(5)).get()
                Issue.record("the lower owner level kept the partition")
            } catch let error as EventHubsError {
                #expect(error.kind == .linkStolen, "\(error)")
                #expect(error.message.contains("amqp:link:stolen"))
            }
            _ = second
            // Server busy on the next attach.
            emulator.faults.serverBusy(count: 1)
            do {
                let busy = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "3", from: .earliest).get()
                try busy.flow(credit: 1)
                _ = try await busy.receive(count: 1, timeout: .seconds(5)).get()
                Issue.record("server-busy was not reported")
            } catch let error as EventHubsError {
                #expect(error.kind == .serverBusy, "\(error.message)")
            }
            try await client.close().get()
        }
    }

    /// Sluice agrees with the official SDK: what the official producer sent is what Sluice's receiver reads, per
    /// partition, with the same sequence numbers, bodies and properties as the official consumer reads.
    @Test func sluiceReadsWhatTheOfficialProducerSent() async throws {
        try await Self.withEmulator { _, connection in
            let text = "Endpoint=sb://127.0.0.1:\(connection.port!);SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
            _ = try runOfficialSDK("produce", connectionString: text, hub: "eh1")
            let official = try runOfficialSDK("consume", connectionString: text, hub: "eh1", extra: ["10"])
            let client = try await EventHubsClient.connect(connection, group: Self.group).get()
            for partition in ["0", "1", "2", "3"] {
                let expected = official.filter { $0["partition"] as? String == partition }
                let receiver = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: partition, from: .earliest).get()
                let events = expected.isEmpty ? [] : try await Self.receiveAll(receiver, count: expected.count)
                #expect(events.map(\.sequenceNumber) == expected.map { Int64($0["sequence_number"] as! Int) }, "partition \(partition)")
                #expect(events.map(\.offset) == expected.map { $0["offset"] as! String }, "partition \(partition)")
                for (event, record) in zip(events, expected) {
                    if let body = record["body"] as? String { #expect(String(decoding: event.body, as: UTF8.self) == body) }
                    if let size = record["size"] as? Int { #expect(event.body.count == size) }
                    #expect(event.partitionKey == record["partition_key"] as? String)
                    let properties = record["properties"] as? [String: Any] ?? [:]
                    #expect((event.properties?.count ?? 0) == properties.count, "partition \(partition)")
                    if let i = properties["i"] as? Int { #expect(event.properties?[text: "i"]?.int64Value == Int64(i)) }
                    if let kind = properties["kind"] as? String { #expect(event.properties?[text: "kind"]?.text == kind) }
                }
                try await receiver.close().get()
            }
            try await client.close().get()
        }
    }

    /// Tokens are renewed before they expire: with 1-second tokens, a receiver opened once the first token has
    /// expired is still authorized (the emulator checks the expiry of the tokens on the connection); and again once
    /// the renewed token has expired too.
    @Test func tokensAreRenewedBeforeTheyExpire() async throws {
        try await Self.withEmulator { emulator, connection in
            var options = EventHubsClient.Options()
            options.tokenLifetime = 1
            // Tokens made from now on expire by this time at the latest (expiries are whole seconds).
            let firstExpiry = (Date().timeIntervalSince1970 + 1).rounded(.up) + 1
            let client = try await EventHubsClient.connect(connection, options: options, group: Self.group).get()
            let first = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "0", from: .earliest).get()
            for round in 1...2 {
                // Wait until the token in use when the round began has certainly expired.
                let expired = firstExpiry + Double(round - 1)
                while Date().timeIntervalSince1970 < expired { try await Task.sleep(for: .milliseconds(20)) }
                try emulator.produce(hub: "eh1", partition: 1, bodies: [Array("after renewal \(round)".utf8)])
                let receiver = try await client.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "1", from: .sequenceNumber(Int64(round - 1))).get()
                let events = try await Self.receiveAll(receiver, count: 1)
                #expect(events.map { String(decoding: $0.body, as: UTF8.self) } == ["after renewal \(round)"])
                try await receiver.close().get()
            }
            try await first.close().get()
            try await client.close().get()
        }
    }

    /// Nothing listening: the connect fails with the address in the message (and leaves no promise behind, which a
    /// debug build of NIO would trap on).
    @Test func nothingListeningIsAClearError() async throws {
        let connection = try EventHubsConnectionString(parsing: "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true")
        do {
            _ = try await EventHubsClient.connect(connection, group: Self.group).get()
            Issue.record("connected to a closed port")
        } catch let error as EventHubsError {
            #expect(error.kind == .connection)
            #expect(error.message.contains("cannot connect to 127.0.0.1:1"), "\(error.message)")
        }
    }
}
