#if canImport(Glibc)
import Glibc
#endif

/// Why a file is not an ELF shared object this host can read: one phrase, no path (the caller names the file).
struct ELFError: Error, CustomStringConvertible, Equatable {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The structure of a 64-bit little-endian ELF file read through plain `pread`s of an open descriptor.
///
/// The file is untrusted: it is read before anything of it runs, to decide whether it may be opened with `dlopen`.
/// Every offset and size it states is checked against the file's real size before it is read, and reads go into
/// buffers of checked sizes (no mmap), so a truncated or hostile file is an `ELFError`, never a crash.
struct ELFFile {
    let descriptor: Int32
    let size: UInt64
    let sections: [Section]
    let segments: [Segment]

    /// A section header's fields that symbol lookup needs.
    struct Section {
        var type: UInt32
        var offset: UInt64
        var size: UInt64
        var link: UInt32
        var entrySize: UInt64
    }

    /// A program header's fields that symbol lookup needs.
    struct Segment {
        var type: UInt32
        var offset: UInt64
        var virtualAddress: UInt64
        var fileSize: UInt64
    }

    static let headerSize = 64
    static let sectionHeaderSize = 64
    static let programHeaderSize = 56

    /// The ELF machine this process runs on: a shared object for another machine cannot be loaded.
    static var hostMachine: UInt16 {
        #if arch(x86_64)
        62
        #elseif arch(arm64)
        183
        #else
        0
        #endif
    }

    static func machineName(_ machine: UInt16) -> String {
        switch machine {
        case 3: "i386"
        case 40: "ARM"
        case 62: "x86_64"
        case 183: "aarch64"
        case 243: "RISC-V"
        default: "machine \(machine)"
        }
    }

    /// Reads and checks the headers of the file open at `descriptor`, `size` bytes long.
    init(descriptor: Int32, size: UInt64) throws(ELFError) {
        self.descriptor = descriptor
        self.size = size
        guard size >= UInt64(Self.headerSize) else {
            throw ELFError("not an ELF file (\(size) bytes, shorter than an ELF header)")
        }
        let header = try Self.read(descriptor, size: size, at: 0, count: Self.headerSize, what: "the ELF header")
        guard header[0] == 0x7F, header[1] == 0x45, header[2] == 0x4C, header[3] == 0x46 else {
            throw ELFError("not an ELF file (no ELF magic number)")
        }
        guard header[4] == 2 else {
            throw ELFError("ELF class \(header[4] == 1 ? "32-bit" : "\(header[4])") is not supported (64-bit only)")
        }
        guard header[5] == 1 else {
            throw ELFError("ELF data encoding \(header[5] == 2 ? "big-endian" : "\(header[5])") is not supported (little-endian only)")
        }
        let type = header.u16(16)
        guard type == 3 else {
            throw ELFError("ELF type \(type == 2 ? "executable" : type == 1 ? "relocatable object" : "\(type)") is not a shared object")
        }
        let machine = header.u16(18)
        guard machine == Self.hostMachine else {
            throw ELFError(
                "built for \(Self.machineName(machine)), this host is \(Self.machineName(Self.hostMachine))"
            )
        }
        let programOffset = header.u64(32)
        let sectionOffset = header.u64(40)
        let programEntrySize = Int(header.u16(54))
        var programCount = Int(header.u16(56))
        let sectionEntrySize = Int(header.u16(58))
        var sectionCount = UInt64(header.u16(60))

        // Extended numbering: counts too large for the header live in section 0.
        var first: Section?
        if sectionOffset != 0 {
            guard sectionEntrySize == Self.sectionHeaderSize else {
                throw ELFError("section header size is \(sectionEntrySize), expected \(Self.sectionHeaderSize)")
            }
            let zero = try Self.read(descriptor, size: size, at: sectionOffset, count: Self.sectionHeaderSize, what: "section header 0")
            first = Self.section(zero, at: 0)
            if sectionCount == 0 { sectionCount = first!.size }
            if programCount == 0xFFFF { programCount = Int(zero.u32(44)) }
        } else {
            sectionCount = 0
        }
        var sections: [Section] = []
        if sectionCount > 0 {
            let (bytes, overflow) = sectionCount.multipliedReportingOverflow(by: UInt64(Self.sectionHeaderSize))
            guard !overflow, bytes <= size else {
                throw ELFError("section header table (\(sectionCount) entries at offset \(sectionOffset)) runs past the end of the file (\(size) bytes)")
            }
            let table = try Self.read(descriptor, size: size, at: sectionOffset, count: Int(bytes), what: "the section header table")
            sections = (0..<Int(sectionCount)).map { Self.section(table, at: $0 * Self.sectionHeaderSize) }
        }
        var segments: [Segment] = []
        if programOffset != 0 && programCount > 0 {
            guard programEntrySize == Self.programHeaderSize else {
                throw ELFError("program header size is \(programEntrySize), expected \(Self.programHeaderSize)")
            }
            let table = try Self.read(
                descriptor, size: size, at: programOffset, count: programCount * Self.programHeaderSize,
                what: "the program header table"
            )
            segments = (0..<programCount).map { index in
                let base = index * Self.programHeaderSize
                return Segment(
                    type: table.u32(base), offset: table.u64(base + 8), virtualAddress: table.u64(base + 16),
                    fileSize: table.u64(base + 32)
                )
            }
        }
        self.sections = sections
        self.segments = segments
    }

    private static func section(_ bytes: [UInt8], at base: Int) -> Section {
        Section(
            type: bytes.u32(base + 4), offset: bytes.u64(base + 24), size: bytes.u64(base + 32),
            link: bytes.u32(base + 40), entrySize: bytes.u64(base + 56)
        )
    }

    /// `count` bytes at `offset`, or an error naming `what` when they are not all inside the file.
    func read(at offset: UInt64, count: Int, what: @autoclosure () -> String) throws(ELFError) -> [UInt8] {
        try Self.read(descriptor, size: size, at: offset, count: count, what: what())
    }

    private static func read(_ descriptor: Int32, size: UInt64, at offset: UInt64, count: Int, what: @autoclosure () -> String)
        throws(ELFError) -> [UInt8]
    {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard count >= 0, !overflow, end <= size else {
            throw ELFError("\(what()) (\(count) bytes at offset \(offset)) runs past the end of the file (\(size) bytes)")
        }
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                pread(descriptor, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = n < 0 ? String(cString: strerror(errno)) : "the file is shorter than it was"
                throw ELFError("cannot read \(what()): \(reason)")
            }
            done += n
        }
        return buffer
    }

    /// The file offset of virtual address `address`, through the loadable segment that maps it.
    func offset(ofAddress address: UInt64, what: @autoclosure () -> String) throws(ELFError) -> UInt64 {
        for segment in segments where segment.type == 1 && address >= segment.virtualAddress {
            let delta = address - segment.virtualAddress
            guard delta < segment.fileSize else { continue }
            let (offset, overflow) = segment.offset.addingReportingOverflow(delta)
            guard !overflow, offset < size else { break }
            return offset
        }
        throw ELFError("\(what()) at address 0x\(String(address, radix: 16)) is not in any loadable segment of the file")
    }
}

/// Little-endian integers at byte offsets (the caller has checked the bounds).
extension [UInt8] {
    func u16(_ at: Int) -> UInt16 { UInt16(self[at]) | UInt16(self[at + 1]) << 8 }
    func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
    func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
}
