import Foundation
import SluiceSDK
import Testing

/// The `sluice` commands as a user runs them.
@Suite(.timeLimit(.minutes(3)))
struct CLITests {
    @Test func pluginsListShowsTheFirstPartyPlugins() throws {
        let result = try Support.sluice(["plugins", "list"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(rows.first == ["NAME", "KIND", "VERSION", "ABI", "PATH"])
        let kinds = Dictionary(uniqueKeysWithValues: rows.dropFirst().map { (String($0[0]), String($0[1])) })
        #expect(kinds["file-watch"] == "source")
        #expect(kinds["socket"] == "source")
        #expect(kinds["split"] == "transform")
        #expect(kinds["console"] == "sink")
        #expect(kinds["files"] == "sink")
        for row in rows.dropFirst() {
            #expect(row[3] == "\(SLUICE_ABI_MAJOR).\(SLUICE_ABI_MINOR)")
            #expect(row[4].hasPrefix("/") && row[4].hasSuffix(".so"))
        }
    }

    @Test func pluginsInspectShowsOptions() throws {
        let result = try Support.sluice(["plugins", "inspect", "file-watch"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("file-watch"))
        let directory = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("  directory ") })
        #expect(directory.contains("(required)"))
        let start = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("  start ") })
        #expect(start.contains("earliest|latest"))
        #expect(start.contains("default \"latest\""))
    }

    @Test func pluginsInspectMarksSecretsOutputPathsAndPatterns() throws {
        let eventhubs = try Support.sluice(["plugins", "inspect", "eventhubs"])
        let key = try #require(eventhubs.stdout.split(separator: "\n").first { $0.hasPrefix("  eventhubs.policykey ") })
        #expect(key.contains(" secret "), "\(key)")
        let files = try Support.sluice(["plugins", "inspect", "files"])
        let prefix = try #require(files.stdout.split(separator: "\n").first { $0.hasPrefix("  prefix ") })
        #expect(prefix.contains("output path"), "\(prefix)")
        let suffix = try #require(files.stdout.split(separator: "\n").first { $0.hasPrefix("  suffix ") })
        #expect(suffix.contains("matching ^[^/]*$"), "\(suffix)")
    }

    @Test func inspectingAnUnknownPluginSuggestsOne() throws {
        let result = try Support.sluice(["plugins", "inspect", "splitt"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("no plugin named 'splitt' (did you mean 'split'?)"))
    }

    @Test func pluginsCheckPassesAGoodPluginAndFailsAMisconfiguredOne() throws {
        let split = Support.binDirectory.appendingPathComponent("libSluiceSplitTransform.so").path
        let good = try Support.sluice(["plugins", "check", split])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("passed"))
        #expect(good.stdout.contains("[ok] refuses an unknown option"))

        // The files sink needs a prefix: without --config the check fails, naming the key, and exits 1.
        let files = Support.binDirectory.appendingPathComponent("libSluiceFilesSink.so").path
        let bad = try Support.sluice(["plugins", "check", files])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("[FAIL] accepts the configuration: missing required configuration key 'prefix'"))

        let missing = try Support.sluice(["plugins", "check", "/nonexistent/libX.so"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/nonexistent/libX.so: no such file"))
    }

    @Test func validateReportsEveryErrorAndExits2() throws {
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let file = work.appendingPathComponent("bad.yaml")
        try """
            name: bad
            batch_interval: 1s
            sources:
              lines: {plugin: file-watch, config: {directory: /tmp, strat: earliest}}
            sinks:
              out: {from: line, plugin: console}
            """.write(to: file, atomically: true, encoding: .utf8)
        let result = try Support.sluice(["validate", file.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(file.path):4:"))
        #expect(result.stderr.contains("sources.lines.config.strat: unknown option 'strat' for plugin 'file-watch' (did you mean 'start'?)"))
        #expect(result.stderr.contains("\(file.path):6:"))
        #expect(result.stderr.contains("sinks.out.from: no source or stage named 'line' (did you mean 'lines'?)"))
        #expect(result.stderr.contains("2 errors"))
    }

    @Test func validateAcceptsTheExample() throws {
        let result = try Support.sluice(["validate", "examples/wordcount/pipeline.yaml"], directory: Support.repoRoot)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("pipeline 'wordcount' is valid"))
    }

    @Test func aPluginRefusingItsConfigurationIsReportedAtTheConfigBlock() throws {
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        try """
            name: missing-dir
            batch_interval: 100ms
            sources:
              lines:
                plugin: file-watch
                config: {directory: /no/such/inbox}
            sinks:
              out: {from: lines, plugin: console}
            """.write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let result = try Support.sluice(["run", "p.yaml", "--batches", "1"], directory: work, timeout: 30)
        #expect(result.status == 2)
        #expect(result.stderr.contains("p.yaml:6:"), "\(result.stderr)")
        #expect(result.stderr.contains("sources.lines.config: plugin 'file-watch' refused its configuration"))
        #expect(result.stderr.contains("/no/such/inbox"))
    }

    @Test func aCPluginLoadsAndRunsInAPipeline() throws {
        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let plugins = work.appendingPathComponent("plugins")
        let inbox = work.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        try CFixtures.sharedObject(
            Support.repoRoot.appendingPathComponent("SDK/Examples/c-uppercase/uppercase.c").path,
            to: plugins.appendingPathComponent("libuppercase.so")
        )
        try "hello world\nsluice in c\n".write(to: inbox.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        try """
            name: c-plugin
            batch_interval: 100ms
            sources:
              lines: {plugin: file-watch, config: {directory: in, start: earliest}}
            stages:
              loud: {from: lines, plugin: uppercase, config: {prefix: "> "}}
            sinks:
              out: {from: loud, plugin: files, config: {prefix: out/part, format: text}}
            """.write(to: work.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let list = try Support.sluice(["plugins", "list", "--plugin-dir", plugins.path])
        #expect(list.stdout.contains("uppercase"))
        let result = try Support.sluice(
            ["run", "p.yaml", "--until-idle", "--idle-batches", "1", "--plugin-dir", "plugins", "--progress", "plain"],
            directory: work,
            timeout: 30
        )
        #expect(result.status == 0, "\(result.stderr)")
        let out = work.appendingPathComponent("out")
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        let text = try files.map { try String(contentsOf: out.appendingPathComponent($0), encoding: .utf8) }.joined()
        #expect(text == "> HELLO WORLD\n> SLUICE IN C\n")
    }
}
