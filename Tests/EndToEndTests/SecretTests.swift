import Foundation
import Testing

/// A known secret written everywhere a user might put one — the right option, a connection string, a connection
/// string with `:` typed for `=`, a misspelt key name, a YAML key, an option of the wrong type, a line with a YAML
/// error — never appears in anything `sluice` prints or stores.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct SecretTests {
    /// Shaped like an Event Hubs key (44 base64 characters); any 12 of them in a row would be a leak.
    static let secret = "Qm9yaXNTM2NyZXRLZXkxMjM0NTY3ODkwYWJjZGVm+/Z="
    static var pieces: [String] {
        stride(from: 0, to: secret.count - 12, by: 4).map { String(secret.dropFirst($0).prefix(12)) }
    }

    /// The `sources.events.config` block of each case, and whether `validate` must accept the file (it has the
    /// plugin check its configuration, so a malformed connection string is caught there).
    static func cases(port: Int) -> [(name: String, config: String, valid: Bool)] {
        let namespace = "eventhubs.namespace: \"127.0.0.1:\(port)\"\n      eventhubs.useDevelopmentEmulator: true"
        let endpoint = "Endpoint=sb://127.0.0.1:\(port)/;SharedAccessKeyName=root"
        let common = "eventhubs.receiveTimeoutMs: 300"
        return [
            ("the key option", "\(namespace)\n      eventhubs.name: [eh1]\n      eventhubs.policyname: root\n      eventhubs.policykey: \"\(secret)\"\n      \(common)", true),
            ("a connection string", "connection_string: \"\(endpoint);SharedAccessKey=\(secret);EntityPath=eh1;UseDevelopmentEmulator=true\"\n      \(common)", true),
            ("a colon for an equals sign", "connection_string: \"\(endpoint);SharedAccessKey:\(secret);EntityPath=eh1;UseDevelopmentEmulator=true\"\n      \(common)", false),
            ("a misspelt key name", "connection_string: \"\(endpoint);SharedAccesKey=\(secret);EntityPath=eh1;UseDevelopmentEmulator=true\"\n      \(common)", false),
            ("a YAML key", "\(namespace)\n      eventhubs.name: [eh1]\n      \"SharedAccessKey=\(secret)\": 1", false),
            ("an option of the wrong type", "\(namespace)\n      eventhubs.name: [eh1]\n      eventhubs.maxRate: \(secret)", false),
            ("a YAML error on the line", "\(namespace)\n      eventhubs.name: [eh1]\n      eventhubs.policykey: \"\(secret)\n      x: [", false),
            ("both forms at once", "\(namespace)\n      eventhubs.name: [eh1]\n      eventhubs.policyname: root\n      eventhubs.policykey: \(secret)\n      connection_string: \"\(endpoint);SharedAccessKey=\(secret)\"", false),
        ]
    }

    static func pipeline(config: String, checkpoint: URL) -> String {
        """
        name: secrets
        batch_interval: 100ms
        checkpoint: \(checkpoint.path)
        sources:
          events:
            plugin: eventhubs
            config:
              \(config)
        sinks:
          out: {from: events, plugin: console}
        """
    }

    /// Every file under `directory`, as text.
    static func contents(of directory: URL) -> String {
        let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)?.allObjects as? [URL] ?? []
        return files.compactMap { try? String(contentsOf: $0, encoding: .isoLatin1) }.joined(separator: "\n")
    }

    /// The key given through the environment (`${EH_KEY}`) or a file (`${file:…}`), as operators are told to.
    @Test func aKeyFromTheEnvironmentOrAFileIsNeverShown() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:2", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-secrets-env")
        defer { try? FileManager.default.removeItem(at: work) }
        try (Self.secret + "\n").write(to: work.appendingPathComponent("key.txt"), atomically: true, encoding: .utf8)
        for port in [emulator.port, try EventHubsPipelineTests.closedPort()] {
            for (index, reference) in ["${EH_KEY}", "${file:key.txt}"].enumerated() {
                let checkpoint = work.appendingPathComponent("checkpoint-\(port)-\(index)")
                let file = work.appendingPathComponent("p-\(port)-\(index).yaml")
                let config = "eventhubs.namespace: \"127.0.0.1:\(port)\"\n      eventhubs.useDevelopmentEmulator: true\n"
                    + "      eventhubs.name: [eh1]\n      eventhubs.policyname: root\n      eventhubs.policykey: \"\(reference)\"\n"
                    + "      eventhubs.receiveTimeoutMs: 300\n      eventhubs.maxRate: \"${MAX_RATE:-10}\""
                try Self.pipeline(config: config, checkpoint: checkpoint).write(to: file, atomically: true, encoding: .utf8)
                let environment = ["EH_KEY": Self.secret]
                let validate = try Support.sluice(["validate", file.path], environment: environment, timeout: 60)
                let run = try Support.sluice(
                    ["run", file.path, "--batches", "2", "--progress", "plain", "--log-level", "trace"], environment: environment, timeout: 60
                )
                // The JSON logs go through the same masking: no field of any record carries the key.
                let json = try Support.sluice(
                    ["run", file.path, "--batches", "2", "--progress", "none", "--log-level", "trace", "--log-format", "json"],
                    environment: environment, timeout: 60
                )
                let printed = [validate.stdout, validate.stderr, run.stdout, run.stderr, json.stdout, json.stderr].joined(separator: "\n")
                #expect(json.status != 0, "\(reference): \(json.stderr)")
                #expect(validate.status == 0, "\(reference): \(validate.stderr)")
                #expect(run.status != 0, "\(reference): the key is refused (401) or the namespace is down\n\(run.stderr)")
                for piece in Self.pieces {
                    #expect(!printed.contains(piece), "\(reference) (port \(port)) shows the key:\n\(printed)")
                    #expect(!Self.contents(of: checkpoint).contains(piece), "\(reference): the checkpoint holds the key")
                }
            }
        }
    }

    @Test func noOutputEverShowsTheSecret() throws {
        let emulator = try EmulatorProcess(["--hub", "eh1:2", "--quiet"])
        defer { emulator.stop() }
        let work = try Support.makeTemporaryDirectory("sluice-secrets")
        defer { try? FileManager.default.removeItem(at: work) }
        // Against a live namespace (which refuses the key: 401) and against an address where nothing listens.
        for port in [emulator.port, try EventHubsPipelineTests.closedPort()] {
            for (index, c) in Self.cases(port: port).enumerated() {
                let checkpoint = work.appendingPathComponent("checkpoint-\(port)-\(index)")
                let file = work.appendingPathComponent("p-\(port)-\(index).yaml")
                try Self.pipeline(config: c.config, checkpoint: checkpoint).write(to: file, atomically: true, encoding: .utf8)
                let validate = try Support.sluice(["validate", file.path], timeout: 60)
                let run = try Support.sluice(["run", file.path, "--batches", "2", "--progress", "plain"], timeout: 60)
                let show = try Support.sluice(["checkpoints", "show", checkpoint.path], timeout: 60)
                let printed = [validate.stdout, validate.stderr, run.stdout, run.stderr, show.stdout, show.stderr].joined(separator: "\n")
                let stored = Self.contents(of: checkpoint)
                #expect(validate.status == (c.valid ? 0 : 2), "\(c.name): \(validate.stderr)")
                #expect(run.status != 0, "\(c.name): the run cannot succeed with this key\n\(run.stderr)")
                #expect(!run.stderr.isEmpty, "\(c.name): the failure is explained")
                for piece in Self.pieces {
                    #expect(!printed.contains(piece), "\(c.name) (port \(port)): printed output shows the secret:\n\(printed)")
                    #expect(!stored.contains(piece), "\(c.name) (port \(port)): the checkpoint directory holds the secret")
                }
            }
        }
    }
}
