import Foundation
import Testing

/// `sluice validate` has each plugin check its own configuration (ABI 1.2 `SLUICE_HOST_CHECK_ONLY`), without
/// starting it: values a schema cannot judge are caught before `run`, and nothing connects or writes.
@Suite(.timeLimit(.minutes(3)))
struct ValidateConfigurationTests {
    static func pipeline(_ sourceConfig: String) -> String {
        """
        name: check
        batch_interval: 1s
        sources:
          events:
            plugin: eventhubs
            config:
              \(sourceConfig)
        sinks:
          out: {from: events, plugin: console}
        """
    }

    @Test func aConnectionStringThePluginRefusesFailsValidate() throws {
        let work = try Support.makeTemporaryDirectory("sluice-validate-check")
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appendingPathComponent("p.yaml")
        try Self.pipeline(#"connection_string: "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=root;SharedAccessKey=abc;Bogus=1""#)
            .write(to: file, atomically: true, encoding: .utf8)
        let result = try Support.sluice(["validate", file.path])
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("p.yaml:7:7: error: sources.events.config: plugin 'eventhubs' refused its configuration"), "\(result.stderr)")
        #expect(result.stderr.contains("unknown key 'Bogus'"), "\(result.stderr)")
    }

    @Test func aValidConfigurationIsCheckedWithoutConnecting() throws {
        // Nothing listens at the namespace: a real start would retry for eventhubs.receiveTimeoutMs and fail.
        let (fd, port) = try Support.listenOnLoopback()
        close(fd)
        let work = try Support.makeTemporaryDirectory("sluice-validate-check")
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appendingPathComponent("p.yaml")
        try Self.pipeline("""
            eventhubs.namespace: "127.0.0.1:\(port)"
                  eventhubs.useDevelopmentEmulator: true
                  eventhubs.name: [eh1]
                  eventhubs.policyname: root
                  eventhubs.policykey: abc
                  eventhubs.receiveTimeoutMs: 60000
            """).write(to: file, atomically: true, encoding: .utf8)
        let started = Date()
        let result = try Support.sluice(["validate", file.path], timeout: 50)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(-started.timeIntervalSinceNow < 30, "validate connected (or tried to) instead of checking only")
        #expect(!result.stderr.contains("retrying"), "\(result.stderr)")
        // A starting position the plugin cannot read is caught too.
        try Self.pipeline("""
            eventhubs.namespace: "127.0.0.1:\(port)"
                  eventhubs.name: [eh1]
                  eventhubs.policyname: root
                  eventhubs.policykey: abc
                  eventhubs.startingPosition: yesterday
            """).write(to: file, atomically: true, encoding: .utf8)
        let position = try Support.sluice(["validate", file.path], timeout: 50)
        #expect(position.status == 2, "\(position.stderr)")
        #expect(position.stderr.contains("eventhubs.startingPosition"), "\(position.stderr)")
    }

    @Test func aPluginOfAnOlderABIIsNotAskedAndSaysSo() throws {
        let work = try Support.makeTemporaryDirectory("sluice-validate-check")
        defer { try? FileManager.default.removeItem(at: work) }
        let plugins = work.appendingPathComponent("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: false)
        try PluginFileSafetyTests.compile("good_c_transform.c", to: plugins.appendingPathComponent("libold.so"), flags: ["-DSLUICE_TEST_AS_1_0"])
        let file = work.appendingPathComponent("p.yaml")
        try """
            name: check
            batch_interval: 1s
            sources:
              lines: {plugin: file-watch, config: {directory: /tmp}}
            stages:
              same: {from: lines, plugin: c-identity}
            sinks:
              out: {from: same, plugin: console}
            """.write(to: file, atomically: true, encoding: .utf8)
        let result = try Support.sluice(["validate", file.path, "--plugin-dir", plugins.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("note: stage 'same' (plugin 'c-identity', ABI 1.0) is built for an older ABI"), "\(result.stderr)")
    }

    @Test func aMissingWatchedDirectoryFailsValidate() throws {
        let work = try Support.makeTemporaryDirectory("sluice-validate-check")
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appendingPathComponent("p.yaml")
        try """
            name: check
            batch_interval: 1s
            sources:
              lines: {plugin: file-watch, config: {directory: ./no-such-directory}}
            sinks:
              out: {from: lines, plugin: console}
            """.write(to: file, atomically: true, encoding: .utf8)
        let result = try Support.sluice(["validate", file.path])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("configuration key 'directory'"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent("no-such-directory").path))
    }
}
