import Foundation
import NIOCore
import SluiceAMQP
import Testing

/// Bytes from a hex string ("a1 02 68 69"; spaces and | ignored).
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { $0.isHexDigit })
    precondition(digits.count % 2 == 0, "odd hex string")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func encoded(_ value: AMQPValue) -> [UInt8] {
    var buffer = ByteBuffer()
    buffer.writeAMQPValue(value)
    return Array(buffer.readableBytesView)
}

func decoded(_ bytes: [UInt8]) throws -> AMQPValue {
    var buffer = ByteBuffer(bytes: bytes)
    let value = try buffer.readAMQPValue()
    #expect(buffer.readableBytes == 0, "bytes left after the value")
    return value
}

/// The encodings of part 1.6 of the specification, value by value: what the encoder writes (the shortest form) and
/// that the decoder reads it back.
@Suite(.timeLimit(.minutes(1)))
struct AMQPPrimitiveTests {
    static let golden: [(AMQPValue, String)] = [
        (.null, "40"),
        (.boolean(true), "41"),
        (.boolean(false), "42"),
        (.ubyte(0xfe), "50 fe"),
        (.ushort(0x1234), "60 12 34"),
        (.uint(0), "43"),
        (.uint(200), "52 c8"),
        (.uint(300), "70 00 00 01 2c"),
        (.ulong(0), "44"),
        (.ulong(0x10), "53 10"),
        (.ulong(0x0000_468C_0000_0004), "80 00 00 46 8c 00 00 00 04"),
        (.byte(-2), "51 fe"),
        (.short(-2), "61 ff fe"),
        (.int(-1), "54 ff"),
        (.int(100_000), "71 00 01 86 a0"),
        (.long(127), "55 7f"),
        (.long(-129), "81 ff ff ff ff ff ff ff 7f"),
        (.float(1.5), "72 3f c0 00 00"),
        (.double(-2), "82 c0 00 00 00 00 00 00 00"),
        (.char(0x41), "73 00 00 00 41"),
        (.timestamp(1_700_000_000_000), "83 00 00 01 8b cf e5 68 00"),
        (.uuid(UUID(uuidString: "00112233-4455-6677-8899-AABBCCDDEEFF")!), "98 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff"),
        (.binary([1, 2]), "a0 02 01 02"),
        (.string("hi"), "a1 02 68 69"),
        (.string("é"), "a1 02 c3 a9"),
        (.symbol("amqp:link:stolen"), "a3 10" + Array("amqp:link:stolen".utf8).map { String(format: "%02x", $0) }.joined()),
        (.list([]), "c0 01 00"),
        (.list([.boolean(true), .uint(1)]), "c0 04 02 41 52 01"),
        (.map(["i": .int(0)]), "c1 06 02 a1 01 69 54 00"),
        (.array(.symbols(["a", "bc"])), "e0 07 02 a3 01 61 02 62 63"),
        (.array(try! AMQPArray(.long, [.long(1), .long(2)])), "e0 12 02 81 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 02"),
        (.described(descriptor: .ulong(0x75), value: .binary([0x41])), "00 53 75 a0 01 41"),
    ]

    @Test(arguments: golden.indices)
    func encodesAndDecodes(index: Int) throws {
        let (value, bytes) = Self.golden[index]
        #expect(encoded(value) == hex(bytes), "encoding of \(value)")
        #expect(try decoded(hex(bytes)) == value, "decoding of \(bytes)")
    }

    /// Longer forms a peer may send: the decoder reads every width of every type.
    static let alternatives: [(String, AMQPValue)] = [
        ("70 00 00 00 05", .uint(5)),
        ("80 00 00 00 00 00 00 00 00", .ulong(0)),
        ("71 ff ff ff ff", .int(-1)),
        ("56 01", .boolean(true)),
        ("b1 00 00 00 02 68 69", .string("hi")),
        ("b3 00 00 00 01 78", .symbol("x")),
        ("b0 00 00 00 01 ff", .binary([0xff])),
        ("45", .list([])),
        ("d0 00 00 00 06 00 00 00 02 41 42", .list([.boolean(true), .boolean(false)])),
        ("d1 00 00 00 08 00 00 00 02 a3 01 6b 40", .map([.symbol("k"): .null])),
        ("f0 00 00 00 0d 00 00 00 02 b1 00 00 00 00 00 00 00 00", .array(.strings(["", ""]))),
        ("e0 02 00 a3", .array(.symbols([]))),
    ]

    @Test(arguments: alternatives.indices)
    func decodesEveryWidth(index: Int) throws {
        let (bytes, value) = Self.alternatives[index]
        #expect(try decoded(hex(bytes)) == value)
    }

    @Test func largeCompoundsUseThe32BitForms() throws {
        let long = AMQPValue.binary([UInt8](repeating: 7, count: 300))
        #expect(encoded(long).prefix(5) == [0xb0, 0, 0, 1, 0x2c])
        let list = AMQPValue.list([AMQPValue](repeating: .string("abcdefgh"), count: 40))
        let bytes = encoded(list)
        #expect(bytes.prefix(9) == [0xd0, 0, 0, 0x01, 0x94, 0, 0, 0, 40], "size 4 + 40 × 10, count 40")
        #expect(try decoded(bytes) == list)
        let map = AMQPValue.map(AMQPMap((0..<200).map { .init(key: .uint(UInt32($0)), value: .null) }))
        #expect(encoded(map).first == 0xd1)
        #expect(try decoded(encoded(map)) == map)
        let strings = AMQPValue.array(.strings([String(repeating: "x", count: 300)]))
        #expect(encoded(strings).first == 0xf0)
        #expect(try decoded(encoded(strings)) == strings)
    }

    @Test func arraysOfListsMapsAndDescribedValuesRoundTrip() throws {
        let lists = AMQPValue.array(try AMQPArray(.list, [.list([]), .list([.uint(1)])]))
        #expect(try decoded(encoded(lists)) == lists)
        let maps = AMQPValue.array(try AMQPArray(.map, [.map(["a": .null])]))
        #expect(try decoded(encoded(maps)) == maps)
        let described = AMQPValue.array(
            try AMQPArray(.described(descriptor: .symbol("d"), .string), [.described(descriptor: .symbol("d"), value: "x")])
        )
        #expect(try decoded(encoded(described)) == described)
        #expect(throws: AMQPError.self) { try AMQPArray(.symbol, [.string("not a symbol")]) }
    }

    @Test func anUnknownCodeIsSkippedByItsWidthClassAndWrittenBack() throws {
        let value = try decoded(hex("57 09"))
        #expect(value == .unknown(code: 0x57, bytes: [9]))
        #expect(encoded(value) == hex("57 09"))
        let list = try decoded(hex("c0 06 02 a7 02 01 02 41"))
        #expect(list == .list([.unknown(code: 0xa7, bytes: [2, 1, 2]), .boolean(true)]))
    }

    /// Broken input: every case is an error that says what and where, and the buffer is left as it was.
    static let broken: [(String, AMQPError.Code, String)] = [
        ("a1 05 68 69", .truncated, "ends inside a 5-byte value"),
        ("70 00 01", .truncated, "ends inside a 4-byte value"),
        ("c0 05 02 41", .truncated, "a list of 5 bytes, but only 2 follow"),
        ("c0 03 01 41 41", .invalidEncoding, "1 bytes left over"),
        ("c0 02 02 41 41", .invalidEncoding, "runs past the end"),
        ("c1 02 01 40", .invalidEncoding, "odd number"),
        ("c0 00 00", .invalidEncoding, "cannot hold its count"),
        ("a1 01 ff", .invalidEncoding, "not valid UTF-8"),
        ("56 02", .invalidEncoding, "neither 0 nor 1"),
        ("01", .invalidEncoding, "not an AMQP type code"),
        ("e0 02 01 40", .invalidEncoding, "cannot be an array's element constructor"),
    ]

    @Test(arguments: broken.indices)
    func brokenInputIsAClearError(index: Int) throws {
        let (bytes, code, words) = Self.broken[index]
        var buffer = ByteBuffer(bytes: hex(bytes))
        do {
            _ = try buffer.readAMQPValue()
            Issue.record("\(bytes) decoded")
        } catch {
            #expect(error.code == code, "\(error)")
            #expect(error.message.contains(words), "\(error.message)")
            #expect(error.message.contains("at byte"), "\(error.message)")
        }
        #expect(buffer.readerIndex == 0)
    }

    @Test func nestingIsBounded() throws {
        var bytes: [UInt8] = []
        for _ in 0..<100 { bytes += [0x00, 0x53, 0x01] }
        bytes += [0x40]
        #expect(throws: AMQPError.self) { try decoded(bytes) }
        var ok: [UInt8] = []
        for _ in 0..<10 { ok += [0x00, 0x53, 0x01] }
        ok += [0x40]
        #expect(try decoded(ok) != .null)
    }
}
