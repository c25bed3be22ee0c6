import ReverseWords
import SluiceTesting
import Testing

struct ReverseWordsTests {
    @Test func reversesWords() throws {
        let plugin = try PluginHarness(ReverseWords.self)
        #expect(try plugin.transform([Record("a b c"), Record(""), Record("one")]) == [Record("c b a"), Record(""), Record("one")])
    }

    @Test func customSeparator() throws {
        let plugin = try PluginHarness(ReverseWords.self, config: #"{"separator": ","}"#)
        #expect(try plugin.transform([Record("x,y")]) == [Record("y,x")])
    }

    @Test func emptySeparatorIsRefused() {
        #expect(throws: (any Error).self) { try PluginHarness(ReverseWords.self, config: #"{"separator": ""}"#) }
    }
}
