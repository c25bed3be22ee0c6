import Foundation
import NIOCore
import SluiceAMQP
import Testing

/// The direct transfer frame writer and reader against the general encoder and decoder: the same bytes out, the
/// same frames (or the same refusals) in.
@Suite(.timeLimit(.minutes(1)))
struct AMQPTransferFrameTests {
    /// What the general decoder makes of a frame's bytes: its performative read value by value, the rest as payload.
    static func generalDecode(_ bytes: [UInt8]) throws -> AMQPFrame {
        var buffer = ByteBuffer(bytes: bytes)
        let size = Int(buffer.readInteger(endianness: .big, as: UInt32.self)!)
        let offset = Int(buffer.readInteger(as: UInt8.self)!)
        _ = buffer.readInteger(as: UInt8.self)
        let channel = buffer.readInteger(endianness: .big, as: UInt16.self)!
        precondition(size == bytes.count && offset == 2, "the test's frames are whole, with no extended header")
        let performative = try AMQPPerformative(try buffer.readAMQPValue())
        return AMQPFrame(channel: channel, performative, payload: buffer.slice())
    }

    static let numbers: [UInt32] = [0, 1, 255, 256, 65_535, 1 << 24, UInt32.max]

    @Test func theWriterWritesWhatTheGeneralEncoderWrites() {
        let payload = ByteBuffer(bytes: Array("an event body".utf8))
        for handle in Self.numbers {
            for id in Self.numbers {
                for format in [0, 0x8001_3700] as [UInt32] {
                    for settled in [false, true] {
                        let tag = id &* 2_654_435_761
                        var tagBytes = ByteBuffer()
                        tagBytes.writeInteger(tag, endianness: .big)
                        let transfer = AMQPTransfer(handle: handle, deliveryID: id, deliveryTag: Array(tagBytes.readableBytesView), messageFormat: format, settled: settled)
                        let general = frameBytes(AMQPFrame(channel: 5, .transfer(transfer), payload: payload))
                        var direct = ByteBuffer(bytes: [0xee])  // the writer appends after what is there
                        direct.writeTransferFrame(channel: 5, handle: handle, deliveryID: id, deliveryTag: tag, messageFormat: format, settled: settled) {
                            $0.writeImmutableBuffer(payload)
                        }
                        #expect(Array(direct.readableBytesView) == [0xee] + general, "handle \(handle), id \(id), format \(format), settled \(settled)")
                    }
                }
            }
        }
    }

    @Test func transfersReadDirectlyEqualTheGeneralReading() throws {
        let payload = ByteBuffer(bytes: [0x00, 0x53, 0x75, 0xa0, 0x01, 0x7a])
        var transfers: [AMQPTransfer] = []
        for n in Self.numbers {
            transfers.append(AMQPTransfer(handle: n, deliveryID: n, deliveryTag: [UInt8](repeating: 7, count: Int(n % 300)), messageFormat: n, settled: n % 2 == 0))
        }
        transfers.append(AMQPTransfer(handle: 1))  // a continuation frame: only the handle
        transfers.append(AMQPTransfer(handle: 2, deliveryID: 9, more: true, receiverSettleMode: 1, resume: true, aborted: true, batchable: true))
        transfers.append(AMQPTransfer(handle: 3, deliveryID: 4, deliveryTag: [], settled: true, state: .accepted))  // a state: the general path
        for transfer in transfers {
            let frame = AMQPFrame(channel: 2, .transfer(transfer), payload: payload)
            let decoded = try decodeFrame(frameBytes(frame))
            #expect(decoded == frame)
            #expect(decoded == (try Self.generalDecode(frameBytes(frame))))
        }
    }

    @Test func shortAndWideListsAndOtherEncodingsAreReadAlike() throws {
        let cases: [(String, AMQPTransfer)] = [
            // list8 with only handle and delivery-id (trailing fields left out)
            ("00 53 14 c0 05 02 52 07 52 09", AMQPTransfer(handle: 7, deliveryID: 9)),
            // list32, a uint written in full, the tag as vbin32, booleans as 0x56 bytes
            ("00 53 14 d0 00 00 00 15 00 00 00 06 70 00 00 00 07 43 b0 00 00 00 01 ab 43 56 01 56 00",
             AMQPTransfer(handle: 7, deliveryID: 0, deliveryTag: [0xab], messageFormat: 0, settled: true, more: false)),
            // rcv-settle-mode as a ubyte
            ("00 53 14 c0 09 07 43 43 40 40 40 42 50 01", AMQPTransfer(handle: 0, deliveryID: 0, receiverSettleMode: 1)),
        ]
        for (text, expected) in cases {
            let body = hex(text)
            var bytes = ByteBuffer()
            bytes.writeInteger(UInt32(8 + body.count + 2), endianness: .big)
            bytes.writeBytes([2, 0, 0, 3])
            bytes.writeBytes(body)
            bytes.writeBytes([0xca, 0xfe])
            let frame = try decodeFrame(Array(bytes.readableBytesView))
            #expect(frame == AMQPFrame(channel: 3, .transfer(expected), payload: ByteBuffer(bytes: [0xca, 0xfe])), "\(text)")
            #expect(frame == (try Self.generalDecode(Array(bytes.readableBytesView))))
        }
    }

    /// Every byte of a transfer frame's performative replaced by values that matter to a decoder: the frame decoder
    /// (direct reading with the general one behind it) and the general decoder alone accept the same frames as the
    /// same values and refuse the others.
    @Test func damagedTransfersAreAcceptedOrRefusedAsTheGeneralDecoderDoes() throws {
        var tag = ByteBuffer()
        tag.writeInteger(UInt32(77), endianness: .big)
        let original = frameBytes(AMQPFrame(channel: 0, .transfer(AMQPTransfer(handle: 300, deliveryID: 12, deliveryTag: Array(tag.readableBytesView), messageFormat: 0, settled: false)), payload: ByteBuffer(bytes: [1, 2, 3])))
        let replacements: [UInt8] = [0x00, 0x01, 0x02, 0x0b, 0x0c, 0x40, 0x41, 0x42, 0x43, 0x45, 0x50, 0x52, 0x53, 0x56, 0x70, 0xa0, 0xa1, 0xb0, 0xc0, 0xd0, 0xff]
        var accepted = 0, refused = 0
        for position in 8..<(original.count - 3) {
            for replacement in replacements where replacement != original[position] {
                var bytes = original
                bytes[position] = replacement
                let direct = Result { try decodeFrame(bytes) }
                let general = Result { try Self.generalDecode(bytes) }
                switch (direct, general) {
                case (.success(let a), .success(let b)):
                    #expect(a == b, "byte \(position) = \(replacement)")
                    accepted += 1
                case (.failure, .failure):
                    refused += 1
                default:
                    Issue.record("byte \(position) = \(replacement): frame decoder \(direct), general decoder \(general)")
                }
            }
        }
        // Both kinds occur, so the comparison covered both paths.
        #expect(accepted > 20 && refused > 20, "accepted \(accepted), refused \(refused)")
    }
}

/// The splitter that cuts reads into headers and frames: wherever the reads are cut, the same items come out.
@Suite(.timeLimit(.minutes(1)))
struct AMQPFrameSplitterTests {
    static let stream: (bytes: [UInt8], items: [AMQPWireItem]) = {
        var items: [AMQPWireItem] = [.header(.amqp), .frame(AMQPFrame(channel: 0, .open(AMQPOpen(containerID: "c")))), .frame(.heartbeat)]
        for n in 0..<5 {
            let payload = ByteBuffer(bytes: (0..<(n * 37)).map { UInt8($0 % 256) })
            items.append(.frame(AMQPFrame(channel: 1, .transfer(AMQPTransfer(handle: 2, deliveryID: UInt32(n), deliveryTag: [UInt8(n)], messageFormat: 0, settled: false)), payload: payload)))
        }
        items.append(.header(.sasl))
        var buffer = ByteBuffer()
        for item in items { try! AMQPFrameEncoder().encode(data: item, out: &buffer) }  // encoding cannot fail
        return (Array(buffer.readableBytesView), items)
    }()

    static func split(_ reads: [[UInt8]]) throws -> [AMQPWireItem] {
        var splitter = AMQPFrameSplitter()
        var out: [AMQPWireItem] = []
        for read in reads { try splitter.feed(ByteBuffer(bytes: read)) { out.append($0) } }
        #expect(splitter.pendingBytes == 0)
        return out
    }

    @Test func everyCutGivesTheSameItems() throws {
        let (bytes, items) = Self.stream
        #expect(try Self.split([bytes]) == items)
        for cut in 0...bytes.count {
            #expect(try Self.split([Array(bytes[..<cut]), Array(bytes[cut...])]) == items, "cut at \(cut)")
        }
        // Cut into reads of every small size: items completed across several reads.
        for size in 1...12 {
            let reads = stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
            #expect(try Self.split(reads) == items, "reads of \(size) bytes")
        }
    }

    @Test func anIncompleteItemWaitsAndABrokenOneIsAnError() throws {
        var splitter = AMQPFrameSplitter(maxFrameSize: 512)
        var out: [AMQPWireItem] = []
        try splitter.feed(ByteBuffer(bytes: Array(Self.stream.bytes.prefix(5)))) { out.append($0) }
        #expect(out.isEmpty && splitter.pendingBytes == 5)
        // A frame announcing more than the maximum size is refused as soon as its size is read, even split.
        var large = AMQPFrameSplitter(maxFrameSize: 512)
        try large.feed(ByteBuffer(bytes: [0x00, 0x00])) { _ in }
        #expect(throws: AMQPError.self) { try large.feed(ByteBuffer(bytes: [0x10, 0x00, 0x02, 0x00, 0x00, 0x00])) { _ in } }
    }
}
