import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The Streaming tab in a real browser: `sluice serve` with a word count that keeps running (new files arrive in its
/// watched directory all along, in uneven sizes, so the charts have a shape) and a pipeline that died at its start;
/// then `browser/streaming_tab.py` drives Debian's headless chromium through Selenium against it (charts, table equal
/// to the statistics API, a batch's page, the dead pipeline's page, the stop button) and keeps a screenshot in
/// `.build/test-artifacts/streaming-tab.png`.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StreamingTabBrowserTests {
    static let script = ServeProcess.repository.appendingPathComponent("Tests/SluiceServeTests/browser/streaming_tab.py")
    static let screenshot = ServeProcess.repository.appendingPathComponent(".build/test-artifacts/streaming-tab.png")

    /// The word count over a watched directory, every 250 ms, at most 400 lines a batch.
    static func pipeline(input: URL) -> String {
        """
        name: wordcount-live
        batch_interval: 250ms
        sources:
          lines:
            plugin: file-watch
            max_records_per_partition: 400
            config: {directory: "\(input.path)", glob: "*.txt", start: earliest, poll_interval_ms: 50}
        stages:
          words: {from: lines, plugin: split, config: {separators: " \\t.,;:!?", lowercase: true}}
          counts: {from: words, op: countByValue}
        sinks:
          print: {from: counts, plugin: console, config: {limit: 3, sort: value-desc}}
        """
    }

    @Test func theStreamingTabDrawsARunningPipelineMatchesTheAPIAndStopsIt() async throws {
        let (python, problem) = Self.browserTools()
        guard let python else { throw ServeTestError(problem) }

        let work = try temporaryDirectory("sluice-streaming-tab")
        defer { try? FileManager.default.removeItem(at: work) }
        let input = work.appendingPathComponent("input")
        let staging = work.appendingPathComponent("staging")
        for directory in [input, staging] { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }

        let server = try ServeProcess(dataDirectory: work.appendingPathComponent("data"))
        let created = try await server.post(["pipeline": Self.pipeline(input: input), "name": "wordcount-live"])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["id"] as? Int)

        // The input: a file every 150 ms, 20 to 500 lines, moved into the directory whole (as the source asks).
        let producer = Task {
            var file = 0
            while !Task.isCancelled {
                let lines = 20 + (file * 7919) % 480
                let text = (0..<lines).map { "the quick brown fox \($0 % 23) jumps over word\(($0 * file) % 31)" }.joined(separator: "\n") + "\n"
                let staged = staging.appendingPathComponent("part-\(file).txt")
                try? text.write(to: staged, atomically: false, encoding: .utf8)
                rename(staged.path, input.appendingPathComponent("part-\(file).txt").path)
                file += 1
                try? await Task.sleep(for: .milliseconds(150))
            }
        }
        defer { producer.cancel() }

        try await server.waitForState(id, "running")
        try await server.poll("five completed batches with records", timeout: 60) { () -> Bool? in
            let statistics = try await server.get("/batches/\(id)/streaming/statistics").json
            return (statistics["batchesCompleted"] as? Int ?? 0) >= 5 && (statistics["records"] as? Int ?? 0) > 0 ? true : nil
        }

        // A pipeline that dies at its start (no such plugin): its page must show the cause and charts with no batch.
        let broken = ServeProcess.unknownPluginPipeline(name: "broken")
        let dead = try #require(try await server.post(["pipeline": broken]).json["id"] as? Int)
        try await server.waitForState(dead, "dead")

        try? FileManager.default.removeItem(at: Self.screenshot)
        let output = work.appendingPathComponent("browser.out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let browser = Process()
        browser.executableURL = python
        browser.arguments = [Self.script.path, server.base.absoluteString, String(id), String(dead), Self.screenshot.path]
        browser.standardOutput = try FileHandle(forWritingTo: output)
        browser.standardError = browser.standardOutput
        try browser.run()
        defer { if browser.isRunning { kill(browser.processIdentifier, SIGKILL) } }
        try await server.poll("the browser test to finish", timeout: 180) { browser.isRunning ? nil : true }
        let report = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        print("StreamingTabBrowserTests: streaming_tab.py said:\n\(report)")
        #expect(browser.terminationStatus == 0, "streaming_tab.py failed:\n\(report)\nserver log:\n\(server.serverLog)")

        let state = try await server.get("/batches/\(id)/state").json["state"] as? String
        #expect(state == "killed", "the stop button's DELETE stopped the pipeline")
        let size = (try? FileManager.default.attributesOfItem(atPath: Self.screenshot.path)[.size] as? Int) ?? 0
        #expect(size > 20_000, "a screenshot of the Streaming tab at \(Self.screenshot.path)")
        print("StreamingTabBrowserTests: the Streaming tab's screenshot is kept at \(Self.screenshot.path)")
        #expect(try server.terminate() == 0)
    }

    /// The Python with Selenium (scripts/test's venv first) and Debian's chromium and chromedriver; without them, what
    /// to install. CI (.ci/run) installs them; a missing browser fails this test rather than skipping it, so a
    /// machine that cannot check the page says so instead of passing.
    static func browserTools() -> (python: URL?, problem: String) {
        let environment = ProcessInfo.processInfo.environment
        let chromium = environment["CHROMIUM"] ?? "/usr/bin/chromium"
        let driver = environment["CHROMEDRIVER"] ?? "/usr/bin/chromedriver"
        var missing: [String] = []
        if !FileManager.default.isExecutableFile(atPath: chromium) { missing.append("chromium (\(chromium))") }
        if !FileManager.default.isExecutableFile(atPath: driver) { missing.append("chromium-driver (\(driver))") }
        if !missing.isEmpty {
            return (nil, """
                The Streaming tab's browser test needs Debian's headless Chromium and its WebDriver, missing here: \
                \(missing.joined(separator: ", ")). Install them with `apt-get install -y chromium chromium-driver` \
                (.ci/run does), or point CHROMIUM and CHROMEDRIVER at them.
                """)
        }
        let venv = ServeProcess.repository.appendingPathComponent(".build/test-venv/bin/python3")
        let candidates = [venv.path] + (environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: candidate)
            probe.arguments = ["-c", "import selenium"]
            probe.standardOutput = FileHandle.nullDevice
            probe.standardError = FileHandle.nullDevice
            guard (try? probe.run()) != nil else { continue }
            probe.waitUntilExit()
            if probe.terminationStatus == 0 { return (URL(fileURLWithPath: candidate), "") }
        }
        return (nil, """
            The Streaming tab's browser test needs Python's selenium: run `scripts/test` once (it installs the pinned \
            selenium into .build/test-venv), or `pip install selenium` into the python3 on PATH.
            """)
    }
}

/// The page and its assets as a browser gets them, under `--base-path`, without a browser: content types, the
/// security policy, the base path handed to the script, and the list's JSON for a server with no pipeline.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct StreamingTabRoutesTests {
    @Test func thePageAndItsAssetsAreServedUnderTheBasePathWithAPolicyThatAllowsOnlyThisServer() async throws {
        let work = try temporaryDirectory("sluice-streaming-tab-routes")
        defer { try? FileManager.default.removeItem(at: work) }
        let server = try ServeProcess(dataDirectory: work, arguments: ["--base-path", "/livy"])
        // The server says where it listens with its base path; the page is at both spellings of it.
        let origin = try #require(server.base.absoluteString.components(separatedBy: "/livy").first)
        for path in ["/livy", "/livy/"] {
            let (status, headers, body) = try await Self.fetch(origin + path)
            #expect(status == 200, "\(path)")
            #expect(headers["content-type"] == "text/html; charset=utf-8")
            let policy = try #require(headers["content-security-policy"])
            #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"))
            #expect(!policy.contains("unsafe-inline") && !policy.contains("http"), "nothing from elsewhere, no inline code: \(policy)")
            let page = String(decoding: body, as: UTF8.self)
            #expect(page.contains(#"<meta name="sluice-base" content="/livy">"#))
            #expect(page.contains(#"src="/livy/ui/app.js""#) && page.contains(#"href="/livy/ui/app.css""#))
            #expect(!page.contains("http://") && !page.contains("https://"), "the page names no other server")
        }
        for (path, type) in [("ui/app.js", "text/javascript"), ("ui/app.css", "text/css"), ("ui/favicon.svg", "image/svg+xml")] {
            let (status, headers, body) = try await Self.fetch(origin + "/livy/" + path)
            #expect(status == 200 && headers["content-type"]?.hasPrefix(type) == true, "\(path): \(status) \(headers)")
            #expect(headers["x-content-type-options"] == "nosniff")
            #expect(!String(decoding: body, as: UTF8.self).contains("https://"), "\(path) loads nothing from elsewhere")
        }
        let overview = try await server.get("/ui/api/pipelines").json
        #expect((overview["pipelines"] as? [Any])?.isEmpty == true && overview["now"] is Int)
        #expect(try await server.get("/ui/api/pipelines/7").status == 404)
        #expect(try await Self.fetch(origin + "/ui/app.js").0 == 404, "only under the base path")
        #expect(try server.terminate() == 0)
    }

    static func fetch(_ url: String) async throws -> (Int, [String: String], Data) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields { headers[String(describing: key).lowercased()] = String(describing: value) }
        return (http.statusCode, headers, data)
    }
}
