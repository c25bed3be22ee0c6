import Foundation
import Testing

/// A pipeline submitted to the server loads plugins only from the server's `--plugin-dir`s (and the `sluice`
/// executable's own directory): not from `SLUICE_PLUGIN_PATH` in the server's environment, and not from a
/// `--plugin-dir` smuggled in through `args`. A `.so` is code; nothing outside what the operator allowed may run.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct PluginDirectoryTests {
    /// The `c-identity` transform (Tests/SluiceHostTests/Fixtures/good_c_transform.c) built into `directory`.
    static func buildPlugin(into directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let gcc = Process()
        gcc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gcc.arguments = [
            "gcc", "-std=c11", "-O2", "-shared", "-fPIC", "-fvisibility=hidden",
            "-I", ServeProcess.repository.appendingPathComponent("SDK/CSluice/include").path,
            "-o", directory.appendingPathComponent("libcidentity.so").path,
            ServeProcess.repository.appendingPathComponent("Tests/SluiceHostTests/Fixtures/good_c_transform.c").path,
        ]
        try gcc.run()
        gcc.waitUntilExit()
        try #require(gcc.terminationStatus == 0, "gcc could not build the fixture plugin")
    }

    static func pipeline(_ input: URL) -> String {
        """
        name: outside
        batch_interval: 100ms
        sources:
          lines: {plugin: file-watch, config: {directory: "\(input.path)", start: earliest}}
        stages:
          same: {from: lines, plugin: c-identity}
        sinks:
          out: {from: same, plugin: console}
        """
    }

    @Test func aPluginOutsideTheServersDirectoriesIsNotLoaded() async throws {
        let data = try temporaryDirectory("sluice-serve-plugins")
        defer { try? FileManager.default.removeItem(at: data) }
        let outside = data.appendingPathComponent("outside")
        try Self.buildPlugin(into: outside)
        let input = data.appendingPathComponent("input")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try "a\nb\n".write(to: input.appendingPathComponent("in.txt"), atomically: true, encoding: .utf8)

        // The plugin's directory is on the server's SLUICE_PLUGIN_PATH, not among its --plugin-dirs.
        let server = try ServeProcess(dataDirectory: data.appendingPathComponent("serve"), environment: ["SLUICE_PLUGIN_PATH": outside.path])
        let created = try await server.post(["pipeline": Self.pipeline(input), "args": ["--batches", "2"]])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["id"] as? Int)
        try await server.waitForState(id, "dead")
        let batch = try await server.get("/batches/\(id)").json
        let cause = (batch["appInfo"] as? [String: Any])?["cause"] as? String ?? ""
        #expect(cause.contains("c-identity"), "the cause names the plugin it could not find: \(cause)")

        // Nor through the arguments of `sluice run`.
        let smuggled = try await server.post(["pipeline": Self.pipeline(input), "args": ["--plugin-dir", outside.path]])
        #expect(smuggled.status == 400)
        #expect(smuggled.text.contains("--plugin-dir is not allowed"), "\(smuggled.text)")

        // Given as a --plugin-dir, the same pipeline runs.
        let allowed = try ServeProcess(dataDirectory: data.appendingPathComponent("serve-allowed"), arguments: ["--plugin-dir", outside.path])
        let runs = try await allowed.post(["pipeline": Self.pipeline(input), "args": ["--batches", "2"]])
        try await allowed.waitForState(try #require(runs.json["id"] as? Int), "success")
    }
}
