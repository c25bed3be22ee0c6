import Foundation
import Testing

/// The out-of-tree Swift plugin template, built as a user builds it, dropped into a plugins directory and run.
struct ExternalPluginTests {
    @Test(.timeLimit(.minutes(10)))
    func theTemplatePluginBuildsLoadsAndRuns() throws {
        let template = Support.repoRoot.appendingPathComponent("SDK/Template")
        let build = try Support.run("/usr/bin/env", ["swift", "build", "--package-path", template.path], timeout: 580)
        try #require(build.status == 0, "swift build of the template failed:\n\(build.stdout)\n\(build.stderr)")
        let built = template.appendingPathComponent(".build/debug/libReverseWords.so")

        // A plugin depends on the SDK package alone: nothing else may enter the template's dependency graph (the root
        // package's NIO, swift-crypto, Yams and argument-parser used to).
        let graph = try Support.run(
            "/usr/bin/env", ["swift", "package", "--package-path", template.path, "show-dependencies", "--format", "json"], timeout: 120
        )
        try #require(graph.status == 0, "show-dependencies failed:\n\(graph.stderr)")
        func identities(_ node: [String: Any]) -> [String] {
            let children = node["dependencies"] as? [[String: Any]] ?? []
            return children.flatMap { [$0["identity"] as? String ?? "?"] + identities($0) }
        }
        let root = try JSONSerialization.jsonObject(with: Data(graph.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(identities(root) == ["sdk"], "\(graph.stdout)")

        let work = try Support.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let plugins = work.appendingPathComponent("plugins")
        let inbox = work.appendingPathComponent("in")
        for directory in [plugins, inbox] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        try FileManager.default.copyItem(at: built, to: plugins.appendingPathComponent("libReverseWords.so"))

        let list = try Support.sluice(["plugins", "list", "--plugin-dir", plugins.path])
        #expect(list.status == 0)
        let row = list.stdout.split(separator: "\n").first { $0.hasPrefix("template-reverse ") }
        #expect(row?.contains("transform") == true, "\(list.stdout)\n\(list.stderr)")
        #expect(row?.contains(plugins.path) == true)

        let lines = ["one two three", "a b", "single"]
        try (lines.joined(separator: "\n") + "\n").write(to: inbox.appendingPathComponent("words.txt"), atomically: true, encoding: .utf8)
        try """
            name: ext
            batch_interval: 200ms
            sources:
              lines: {plugin: file-watch, config: {directory: ./in, glob: "*.txt", start: earliest}}
            stages:
              reversed: {from: lines, plugin: template-reverse}
            sinks:
              out: {from: reversed, plugin: files, config: {prefix: ./out/part, format: text}}
            """.write(to: work.appendingPathComponent("pipeline.yaml"), atomically: true, encoding: .utf8)
        let run = try Support.sluice(
            ["run", "pipeline.yaml", "--until-idle", "--idle-batches", "1", "--progress", "plain", "--plugin-dir", plugins.path],
            directory: work,
            timeout: 60
        )
        #expect(run.status == 0, "\(run.stderr)")
        let out = work.appendingPathComponent("out")
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix("part-") }.sorted()
        let text = try files.map { try String(contentsOf: out.appendingPathComponent($0), encoding: .utf8) }.joined()
        #expect(text == "three two one\nb a\nsingle\n")
    }
}
