import Foundation
import SluiceLoader
import SluiceSDK
import SluiceTesting
import Synchronization
import Testing

/// The host fills the schema's defaults into the configuration JSON a plugin's create() receives (docs/abi.md §4),
/// and gives a source its state directory as an absolute path. `config_echo.c` answers with the JSON it got.
@Suite(.serialized)
struct ConfigDefaultsTests {
    static let plugin: LoadedPlugin = {
        let directory = try! TestPaths.temporaryDirectory()
        return try! PluginLoader.load(path: try! PluginLoaderTests.compile("config_echo.c", into: directory, as: "libecho"))
    }()

    /// The configuration the plugin received for `json`, parsed.
    static func received(_ json: String, log: @escaping PluginLogHandler = { _, _, _ in }) throws -> [String: Any] {
        let instance = try PluginInstance(plugin: plugin, name: "echo", configJSON: json, log: log)
        let echo = try instance.transform(.of([])).view.valueString(at: 0)
        return try #require(try JSONSerialization.jsonObject(with: Data(echo.utf8)) as? [String: Any], "\(echo)")
    }

    @Test func everyDefaultArrivesWhenNothingIsWritten() throws {
        let config = try Self.received("{}")
        #expect(config["greeting"] as? String == #"hello "you""#)
        #expect(config["times"] as? Int == 3)
        #expect(config["ratio"] as? Double == 0.5)
        #expect(config["loud"] as? Bool == false)
        #expect(config["target"] == nil, "an option without a default stays absent")
        #expect(config.count == 4)
    }

    @Test func writtenKeysWinAndKeepTheirText() throws {
        let json = #"  { "times" : 12345678901234567, "target": "x\u00e9", "loud": true } "#
        let config = try Self.received(json)
        #expect(config["times"] as? Int == 12345678901234567, "not re-encoded through a double")
        #expect(config["target"] as? String == "xé")
        #expect(config["loud"] as? Bool == true)
        #expect(config["greeting"] as? String == #"hello "you""#)
        #expect(config["ratio"] as? Double == 0.5)
    }

    @Test func textThatIsNotAnObjectIsPassedUnchanged() {
        let schema = Self.plugin.schema
        for text in ["", "[1]", "{not json", "17"] { #expect(schema.fillingDefaults(text) == text) }
        #expect(schema.fillingDefaults(#"{"greeting":"g","times":1,"ratio":1,"loud":true}"#)
            == #"{"greeting":"g","times":1,"ratio":1,"loud":true}"#, "nothing missing, nothing added")
    }

    @Test func aRelativeStateDirectoryReachesThePluginAbsolute() throws {
        let directory = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("state"), withIntermediateDirectories: true)
        // Relative to the working directory, without changing it (other tests run in this process at the same time).
        let depth = FileManager.default.currentDirectoryPath.split(separator: "/").count
        let relative = String(repeating: "../", count: depth) + directory.path.dropFirst() + "/state"
        let logged = Mutex<[String]>([])
        _ = try PluginInstance(plugin: Self.plugin, name: "echo", configJSON: "{}", stateDirectory: relative) { _, _, message in
            logged.withLock { $0.append(message) }
        }
        let expected = PluginLoader.absolutePath(directory.path + "/state")
        #expect(logged.withLock { $0 } == [expected])
    }
}
