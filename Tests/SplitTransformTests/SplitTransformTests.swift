import Foundation
import SluiceTesting
import Testing

@testable import SplitTransform

/// `split` against a byte-at-a-time reference on generated lines: the search 64 bytes at a time must find exactly the
/// separators the byte table finds, wherever they sit in a block, in a line's last block and in the batch's last
/// bytes (where the block reaches past the batch and is searched in a copy).
@Suite struct SplitTransformTests {
    /// The words of `line` split on `separators`, one byte at a time.
    static func reference(_ line: String, _ separators: Set<UInt8>, keepEmpty: Bool) -> [String] {
        var words: [String] = []
        var word: [UInt8] = []
        for byte in line.utf8 {
            if separators.contains(byte) {
                if !word.isEmpty || keepEmpty { words.append(String(decoding: word, as: UTF8.self)) }
                word = []
            } else {
                word.append(byte)
            }
        }
        if !word.isEmpty || (keepEmpty && !line.isEmpty) { words.append(String(decoding: word, as: UTF8.self)) }
        return words
    }

    /// A deterministic generator (SplitMix64), so that a failure is reproducible from its seed.
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    // One and two separators (searched 64 bytes at a time), four (the most searched that way) and five (the byte
    // table alone); with and without empty words.
    @Test(arguments: [" ", " \t", ",;|\t", ",;|\t "], [false, true])
    func wordsMatchAByteAtATimeSplit(separators: String, keepEmpty: Bool) throws {
        let config = #"{"separators": "\#(separators.replacingOccurrences(of: "\t", with: "\\t"))", "keep_empty": \#(keepEmpty)}"#
        let split = try PluginHarness(SplitTransform.self, config: config)
        let alphabet = Array("ab7Z" + separators + "é")
        var random = Generator(state: 42)
        var lines: [String] = []
        for _ in 0..<400 {
            let length = random.next(random.next(4) == 0 ? 200 : 40)
            lines.append(String((0..<length).map { _ in alphabet[random.next(alphabet.count)] }))
        }
        // Long runs without a separator cross several blocks; a separator in each position of two blocks and past
        // them; lines of 63, 64 and 65 bytes ending in a separator or not.
        lines.append(String(repeating: "x", count: 137))
        for position in 0..<131 {
            var bytes = Array(repeating: Character("y"), count: 131)
            bytes[position] = separators.first!
            lines.append(String(bytes))
        }
        for length in 63...65 {
            lines.append(String(repeating: "z", count: length - 1) + String(separators.first!))
            lines.append(String(repeating: "z", count: length))
        }
        let set = Set(separators.utf8)
        let expected = lines.flatMap { Self.reference($0, set, keepEmpty: keepEmpty) }.map { Record($0) }
        #expect(try split.transform(lines.map { Record($0) }) == expected)
        // Each line alone: its last block always reaches past the batch's bytes.
        for line in lines.suffix(140) {
            #expect(try split.transform([Record(line)]) == Self.reference(line, set, keepEmpty: keepEmpty).map { Record($0) })
        }
    }
}
