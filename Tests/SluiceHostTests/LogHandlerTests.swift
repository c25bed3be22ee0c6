import Foundation
import Logging
import SluiceHost
import Synchronization
import Testing

/// `SluiceLogHandler`: one line per message in either format; JSON that any parser reads back exactly, whatever the
/// message holds; secrets masked in the message and the metadata; the level threshold.
struct LogHandlerTests {
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
        func logger(_ format: LogFormat, level: Logger.Level = .trace, secrets: [String] = []) -> Logger {
            var logger = Logger(label: "plugin") { [self] label in
                SluiceLogHandler(label: label, format: format, level: level, secrets: secrets) { line in self.all.withLock { $0.append(line) } }
            }
            logger[metadataKey: "pipeline"] = "p \"1\""
            return logger
        }
        var lines: [String] { all.withLock { $0 } }
    }

    static func parse(_ line: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func jsonEscapesQuotesNewlinesAndControlCharacters() throws {
        let lines = Lines()
        let message = "say \"hi\"\\ \n line two\r\t\u{1}\u{1F}\u{7F} é 😀 \u{2028}end"
        lines.logger(.json).warning(
            "\(message)",
            metadata: [
                "instance": "in\"st\nance", "count": .stringConvertible(42), "ratio": .stringConvertible(0.5),
                "list": ["a", "b\u{0}"], "nested": ["k": "v"], "message": "clash",
            ]
        )
        let line = try #require(lines.lines.first)
        #expect(line.hasSuffix("}\n"))
        #expect(line.dropLast().allSatisfy { $0 != "\n" && $0 != "\r" }, "one line: \(line)")
        let object = try Self.parse(line)
        #expect(object["message"] as? String == message)
        #expect(object["level"] as? String == "warning")
        #expect(object["component"] as? String == "plugin")
        #expect(object["pipeline"] as? String == "p \"1\"")
        #expect(object["instance"] as? String == "in\"st\nance")
        #expect(object["count"] as? Int == 42)
        #expect(object["ratio"] as? Double == 0.5)
        #expect(object["list"] as? [String] == ["a", "b\u{0}"])
        #expect(object["nested"] as? [String: String] == ["k": "v"])
        #expect(object["metadata.message"] as? String == "clash")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let stamp = try #require(object["timestamp"] as? String)
        let date = try #require(formatter.date(from: stamp), "\(stamp)")
        #expect(abs(date.timeIntervalSinceNow) < 60)
        #expect(stamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(stamp)")
    }

    @Test func textShowsTimestampLevelAndInstance() throws {
        let lines = Lines()
        let logger = lines.logger(.text)
        logger.info("call 1 began", metadata: ["instance": "probe"])
        logger.warning("committed position 9 is past")
        logger.info("resuming after batch 3")
        let text = lines.lines
        #expect(text[0].wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[info\] probe: call 1 began\n/) != nil, "\(text)")
        #expect(text[1].hasSuffix(" sluice: warning: committed position 9 is past\n"), "\(text)")
        #expect(text[2].hasSuffix("Z sluice: resuming after batch 3\n"), "\(text)")
    }

    @Test func secretsAreMaskedInMessageAndMetadataInBothFormats() throws {
        let secret = "Zm9vYmFyU2VjcmV0VmFsdWU"
        for format in LogFormat.allCases {
            let lines = Lines()
            lines.logger(format, secrets: [secret]).error(
                "key \(secret); SharedAccessKey=abc123xyz", metadata: ["instance": "with \(secret)", "deep": ["x": "\(secret)"]]
            )
            let line = try #require(lines.lines.first)
            #expect(!line.contains(secret), "\(format): \(line)")
            #expect(!line.contains("abc123xyz"), "\(format): \(line)")
        }
    }

    @Test func messagesBelowTheLevelAreDropped() {
        let lines = Lines()
        let logger = lines.logger(.json, level: .warning)
        logger.debug("no")
        logger.info("no")
        logger.warning("yes")
        logger.error("yes")
        #expect(lines.lines.count == 2)
    }
}
