/// The format of the sources' durable files (file-watch's `files.log`, the socket source's write-ahead log): a
/// header line naming the file's kind and format version, then one record per line,
///
///     <CRC-32C of the payload, 8 lowercase hex digits> <payload length in bytes> <payload>\n
///
/// A payload never holds a newline, so records are found by their newlines and a damaged one cannot swallow the
/// next. What decides between a torn tail (a crash in the middle of an append: tolerated, cut off) and damage
/// (refused):
///
/// - the bytes after the last newline are a torn tail and are cut off, unless they hold a whole record that passes
///   its checksum: then only its newline is missing (a crash just before it, or a lost last byte) and the record
///   is kept, or something else stands where its newline belongs (a newline was overwritten: damage);
/// - every newline-terminated record must parse, have the length it states and match its checksum; the first that
///   does not is damage, reported with its byte offset. Nothing after it is read.
///
/// Shared by the two first-party source plugins through this small target (`package` access: first-party only; it
/// is not SDK API plugin authors depend on).
package enum ChecksummedLines {
    /// Why a file cannot be read; `offset` is the byte offset of the first bad record (or of the header).
    package struct Damage: Error {
        package var offset: Int
        package var reason: String
        /// The file has no header: written by an earlier version of the source, without checksums.
        package var unversioned: Bool

        /// What is wrong, for an error message that names the file and offset.
        package var explanation: String {
            unversioned ? "\(reason): it was written by an earlier version of sluice (without checksums)" : reason
        }
    }

    /// What a file holds: the payloads' byte ranges in it, in order, and the length of its valid part (everything
    /// after it is a torn tail the caller truncates).
    package struct Contents {
        package var records: [Range<Int>]
        package var validEnd: Int
        /// The last record is whole but its newline is missing: the caller appends one before writing more.
        package var missingNewline = false
    }

    /// The header line for `kind` (for example `SLUICE-WAL`), version 2 (version 1 had no header or checksums).
    package static func header(_ kind: String) -> [UInt8] { Array("\(kind) 2\n".utf8) }

    /// Appends `payload` (which must not hold a newline) as one record.
    package static func append(_ payload: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        let checksum = CRC32C.checksum(payload)
        for shift in stride(from: 28, through: 0, by: -4) { output.append(hexDigits[Int((checksum >> UInt32(shift)) & 15)]) }
        output.append(32)
        output.append(contentsOf: String(payload.count).utf8)
        output.append(32)
        output.append(contentsOf: payload)
        output.append(10)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Parses a whole file (see below).
    package static func parse(_ bytes: [UInt8], kind: String) -> Result<Contents, Damage> {
        bytes.withUnsafeBytes { raw in Result { () throws(Damage) in try parse(raw, kind: kind) } }
    }

    /// Parses a whole file whose header names `kind`. An empty file, or a header cut short by a crash, holds nothing.
    package static func parse(_ bytes: UnsafeRawBufferPointer, kind: String) throws(Damage) -> Contents {
        let header = header(kind)
        guard bytes.count >= header.count else {
            if bytes.elementsEqual(header.prefix(bytes.count)) { return Contents(records: [], validEnd: 0) }
            throw Damage(offset: 0, reason: "it does not start with the header '\(kind) 2'", unversioned: !bytes.starts(with: kind.utf8))
        }
        guard bytes.starts(with: header) else {
            let unversioned = !bytes.starts(with: Array("\(kind) ".utf8))
            throw Damage(offset: 0, reason: unversioned ? "it has no '\(kind)' header" : "its header is not '\(kind) 2'", unversioned: unversioned)
        }
        var records: [Range<Int>] = []
        var start = header.count
        while start < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
            guard let newline = rest.firstIndex(of: 10) else {
                // No newline: a torn tail, unless a whole record is there.
                if let payload = try? record(rest, at: start, terminated: false) {
                    guard payload.upperBound == bytes.count else {
                        throw Damage(offset: start, reason: "the record's newline is overwritten", unversioned: false)
                    }
                    records.append(payload)
                    return Contents(records: records, validEnd: bytes.count, missingNewline: true)
                }
                break
            }
            records.append(try record(UnsafeRawBufferPointer(rebasing: rest[..<newline]), at: start, terminated: true))
            start += newline + 1
        }
        return Contents(records: records, validEnd: start)
    }

    /// Checks one record (without its newline) starting at byte `offset`; returns its payload's range in the file.
    /// Unterminated (a tail), the payload is the stated length's worth of bytes, if there are that many.
    private static func record(_ line: UnsafeRawBufferPointer, at offset: Int, terminated: Bool) throws(Damage) -> Range<Int> {
        func damage(_ reason: String) -> Damage { Damage(offset: offset, reason: reason, unversioned: false) }
        guard line.count >= 11, line[8] == 32 else { throw damage("the record is malformed") }
        var checksum: UInt32 = 0
        for byte in line[0..<8] {
            guard let digit = hexDigits.firstIndex(of: byte) else { throw damage("the record's checksum is malformed") }
            checksum = checksum << 4 | UInt32(digit)
        }
        var length = 0
        var index = 9
        while index < line.count, line[index] != 32 {
            let digit = Int(line[index]) - 48
            guard (0...9).contains(digit), length < 1 << 40 else { throw damage("the record's length is malformed") }
            length = length * 10 + digit
            index += 1
        }
        guard index > 9, index < line.count else { throw damage("the record's length is malformed") }
        let payload = (index + 1)..<(index + 1 + length)
        guard terminated ? payload.upperBound == line.count : payload.upperBound <= line.count else {
            throw damage("the record states \(length) bytes but holds \(line.count - index - 1)")
        }
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: line[payload])) == checksum else {
            throw damage("the record's checksum does not match")
        }
        return (payload.lowerBound + offset)..<(payload.upperBound + offset)
    }
}

/// CRC-32C (Castagnoli), table-driven. Written here rather than taken from swift-crypto: the plugins must not pull a
/// crypto library into their .so files for an error-detecting code, and a CRC is what detects flipped and lost bytes
/// (a cryptographic hash adds nothing against accidental damage).
package enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0x82F6_3B78 : value >> 1 }
        return value
    }

    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return ~crc
    }
}
