import EventHubsEmulator
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import SluiceEventHubs
import Testing

/// TLS: the client verifies the server's certificate by default; a self-signed certificate is accepted only when
/// configuration trusts it.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct TLSTests {
    /// A self-signed certificate for localhost and 127.0.0.1, made with openssl by `Tests/EventHubsSDK/test_certificate.sh`
    /// (which the end-to-end TLS test uses too).
    static func makeCertificate(in directory: URL) throws -> (certificate: String, key: String) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("EventHubsSDK/test_certificate.sh")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [script.path, directory.path]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl could not make a test certificate")
        return (directory.appendingPathComponent("cert.pem").path, directory.appendingPathComponent("key.pem").path)
    }

    @Test func aSelfSignedCertificateIsAcceptedOnlyWhenTrusted() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (certificate, key) = try Self.makeCertificate(in: directory)
        let server = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        ))
        let emulator = try EventHubsEmulator(configuration: EmulatorConfiguration(hubs: [.init(name: "eh1", partitionCount: 2)]))
        let port = try await emulator.start(port: 0, tls: server)
        let group = ClientTests.group
        // No UseDevelopmentEmulator: TLS with verification.
        let connection = try EventHubsConnectionString(
            parsing: "Endpoint=sb://127.0.0.1:\(port)/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE"
        )

        let trusting = try await EventHubsClient.connect(connection, options: .init(trustedCertificatesFile: certificate), group: group).get()
        #expect(try await trusting.partitionIDs(hub: "eh1").get() == ["0", "1"])
        try emulator.produce(hub: "eh1", partition: 1, bodies: [Array("over tls".utf8)])
        let receiver = try await trusting.openReceiver(hub: "eh1", consumerGroup: "$Default", partition: "1", from: .earliest).get()
        try receiver.flow(credit: 1)
        let events = try await receiver.receive(count: 1, timeout: .seconds(5)).get()
        #expect(events.map { String(decoding: $0.body, as: UTF8.self) } == ["over tls"])
        try await trusting.close().get()

        do {
            _ = try await EventHubsClient.connect(connection, group: group).get()
            Issue.record("an untrusted self-signed certificate was accepted")
        } catch let error as EventHubsError {
            #expect(error.kind == .connection)
            #expect(error.message.contains("(TLS)"), "\(error.message)")
            #expect(error.message.lowercased().contains("certificate") || error.message.contains("handshake"), "\(error.message)")
        }
        let missing = directory.appendingPathComponent("absent.pem").path
        await #expect(throws: EventHubsError.self) {
            _ = try await EventHubsClient.connect(connection, options: .init(trustedCertificatesFile: missing), group: group).get()
        }
        try await emulator.stop()
    }
}
