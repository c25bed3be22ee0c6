/// The dynamic symbol table of an `ELFFile`: answers whether the file exports a function, without loading it.
///
/// The table is found through the section headers (`.dynsym`, its linked string table, and the hash table linked to
/// it, if any) and, when a file has none (they are optional at run time), through the dynamic segment (`DT_SYMTAB`,
/// `DT_STRTAB`, `DT_STRSZ`, and `DT_GNU_HASH` or `DT_HASH` to find a name). A name is looked up in the hash table
/// the way the dynamic linker itself finds symbols; only a file with sections but no hash table is scanned.
struct ELFSymbolTable {
    let file: ELFFile
    /// File offset and size of the symbol table and its string table.
    let symbolsOffset: UInt64
    let symbolsSize: UInt64
    let stringsOffset: UInt64
    let stringsSize: UInt64
    /// Where to find a name; nil means scan every symbol.
    let hash: Hash?

    enum Hash {
        case gnu(offset: UInt64)
        case sysv(offset: UInt64)
    }

    static let symbolSize: UInt64 = 24
    /// More than any real library's table (the largest first-party plugin's is under 1 MiB): a bound on memory.
    static let maximumTableSize: UInt64 = 256 << 20
    /// A bound on hash-chain walks in a hostile file.
    static let maximumChainSteps = 1 << 20

    init(_ file: ELFFile) throws(ELFError) {
        guard let symbolsIndex = file.sections.firstIndex(where: { $0.type == 11 }) else {  // SHT_DYNSYM
            try self.init(dynamicSegmentOf: file)
            return
        }
        let dynsym = file.sections[symbolsIndex]
        guard Int(dynsym.link) < file.sections.count, file.sections[Int(dynsym.link)].type == 3 else {  // SHT_STRTAB
            throw ELFError("the dynamic symbol table links to section \(dynsym.link), which is not a string table")
        }
        guard dynsym.entrySize == Self.symbolSize else {
            throw ELFError("dynamic symbol entries are \(dynsym.entrySize) bytes, expected \(Self.symbolSize)")
        }
        let strings = file.sections[Int(dynsym.link)]
        // The hash table of these symbols, when the file has one (linkers write one for the dynamic linker): a lookup
        // then reads a few dozen bytes, where a scan reads both tables whole (1.6 MB for the Event Hubs plugin, at
        // every start of `sluice`).
        let link = UInt32(symbolsIndex)
        let hash: Hash? =
            if let gnu = file.sections.first(where: { $0.type == 0x6FFF_FFF6 && $0.link == link }) {  // SHT_GNU_HASH
                .gnu(offset: gnu.offset)
            } else if let sysv = file.sections.first(where: { $0.type == 5 && $0.link == link }) {  // SHT_HASH
                .sysv(offset: sysv.offset)
            } else {
                nil
            }
        try self.init(
            file: file, symbolsOffset: dynsym.offset, symbolsSize: dynsym.size, stringsOffset: strings.offset,
            stringsSize: strings.size, hash: hash
        )
    }

    private init(dynamicSegmentOf file: ELFFile) throws(ELFError) {
        guard let dynamic = file.segments.first(where: { $0.type == 2 }) else {  // PT_DYNAMIC
            throw ELFError("no dynamic symbol table (neither a .dynsym section nor a dynamic segment)")
        }
        guard dynamic.fileSize <= Self.maximumTableSize else {
            throw ELFError("dynamic segment of \(dynamic.fileSize) bytes is implausibly large")
        }
        let entries = try file.read(at: dynamic.offset, count: Int(dynamic.fileSize), what: "the dynamic segment")
        var values: [Int64: UInt64] = [:]
        for base in stride(from: 0, to: entries.count - 15, by: 16) {
            let tag = Int64(bitPattern: entries.u64(base))
            if tag == 0 { break }  // DT_NULL
            if values[tag] == nil { values[tag] = entries.u64(base + 8) }
        }
        guard let symbols = values[6], let strings = values[5], let stringsSize = values[10] else {  // DT_SYMTAB, DT_STRTAB, DT_STRSZ
            throw ELFError("the dynamic segment has no symbol table (DT_SYMTAB, DT_STRTAB and DT_STRSZ)")
        }
        if let entrySize = values[11], entrySize != Self.symbolSize {  // DT_SYMENT
            throw ELFError("dynamic symbol entries are \(entrySize) bytes, expected \(Self.symbolSize)")
        }
        let symbolsOffset = try file.offset(ofAddress: symbols, what: "the dynamic symbol table")
        let hash: Hash
        if let gnu = values[0x6FFF_FEF5] {  // DT_GNU_HASH
            hash = .gnu(offset: try file.offset(ofAddress: gnu, what: "the GNU hash table"))
        } else if let sysv = values[4] {  // DT_HASH
            hash = .sysv(offset: try file.offset(ofAddress: sysv, what: "the hash table"))
        } else {
            throw ELFError("the dynamic segment has neither DT_GNU_HASH nor DT_HASH: its symbols cannot be looked up")
        }
        // The symbol table's size is not recorded: it ends at the end of the file at the latest.
        try self.init(
            file: file, symbolsOffset: symbolsOffset, symbolsSize: file.size - symbolsOffset,
            stringsOffset: try file.offset(ofAddress: strings, what: "the dynamic string table"), stringsSize: stringsSize,
            hash: hash
        )
    }

    private init(
        file: ELFFile, symbolsOffset: UInt64, symbolsSize: UInt64, stringsOffset: UInt64, stringsSize: UInt64, hash: Hash?
    ) throws(ELFError) {
        for (what, offset, size) in [("symbol", symbolsOffset, symbolsSize), ("string", stringsOffset, stringsSize)] {
            let (end, overflow) = offset.addingReportingOverflow(size)
            guard !overflow, end <= file.size else {
                throw ELFError("the dynamic \(what) table (\(size) bytes at offset \(offset)) runs past the end of the file (\(file.size) bytes)")
            }
        }
        self.file = file
        self.symbolsOffset = symbolsOffset
        self.symbolsSize = symbolsSize
        self.stringsOffset = stringsOffset
        self.stringsSize = stringsSize
        self.hash = hash
    }

    /// Whether the file defines and exports `name` as a function (global or weak, default or protected
    /// visibility, in a section of the file rather than undefined).
    func exportsFunction(_ name: String) throws(ELFError) -> Bool {
        let wanted = Array(name.utf8)
        switch hash {
        case nil:
            guard symbolsSize <= Self.maximumTableSize, stringsSize <= Self.maximumTableSize else {
                throw ELFError("the dynamic symbol tables (\(symbolsSize) and \(stringsSize) bytes) are larger than this loader reads (\(Self.maximumTableSize) bytes)")
            }
            let count = symbolsSize / Self.symbolSize
            let symbols = try file.read(at: symbolsOffset, count: Int(count * Self.symbolSize), what: "the dynamic symbol table")
            let strings = try file.read(at: stringsOffset, count: Int(stringsSize), what: "the dynamic string table")
            for index in 0..<Int(count) {
                let base = index * Int(Self.symbolSize)
                if Self.isExportedFunction(symbols, at: base) && Self.name(strings, at: Int(symbols.u32(base)), is: wanted) {
                    return true
                }
            }
            return false
        case .gnu(let offset):
            return try lookUpGNU(wanted, table: offset)
        case .sysv(let offset):
            return try lookUpSysV(wanted, table: offset)
        }
    }

    /// Symbol `index`, checked as `exportsFunction` says, named `wanted`.
    private func symbol(_ index: UInt64, is wanted: [UInt8]) throws(ELFError) -> Bool {
        let (position, overflow) = index.multipliedReportingOverflow(by: Self.symbolSize)
        guard !overflow, position < symbolsSize else {
            throw ELFError("the hash table names symbol \(index), past the end of the symbol table")
        }
        let symbol = try file.read(at: symbolsOffset + position, count: Int(Self.symbolSize), what: "dynamic symbol \(index)")
        guard Self.isExportedFunction(symbol, at: 0) else { return false }
        let nameOffset = UInt64(symbol.u32(0))
        let length = UInt64(wanted.count + 1)
        guard nameOffset < stringsSize, stringsSize - nameOffset >= length else { return false }
        let text = try file.read(at: stringsOffset + nameOffset, count: Int(length), what: "the name of dynamic symbol \(index)")
        return Self.name(text, at: 0, is: wanted)
    }

    /// The GNU hash table: a bucket gives the first symbol of a chain; a chain value's low bit ends the chain.
    private func lookUpGNU(_ wanted: [UInt8], table: UInt64) throws(ELFError) -> Bool {
        let header = try file.read(at: table, count: 16, what: "the GNU hash table header")
        let buckets = UInt64(header.u32(0))
        let firstSymbol = UInt64(header.u32(4))
        let bloomWords = UInt64(header.u32(8))
        guard buckets > 0 else { return false }
        var hash: UInt32 = 5381
        for byte in wanted { hash = hash &* 33 &+ UInt32(byte) }
        let bucketsOffset = table + 16 + bloomWords * 8
        let bucket = try file.read(at: bucketsOffset + UInt64(hash) % buckets * 4, count: 4, what: "a GNU hash bucket").u32(0)
        guard UInt64(bucket) >= firstSymbol, bucket != 0 else { return false }
        let chainOffset = bucketsOffset + buckets * 4
        var index = UInt64(bucket)
        for _ in 0..<Self.maximumChainSteps {
            let value = try file.read(at: chainOffset + (index - firstSymbol) * 4, count: 4, what: "a GNU hash chain").u32(0)
            if value | 1 == hash | 1, try symbol(index, is: wanted) { return true }
            if value & 1 != 0 { return false }
            index += 1
        }
        throw ELFError("a GNU hash chain is longer than \(Self.maximumChainSteps) symbols")
    }

    /// The System V hash table: a bucket gives the first symbol, `chain[symbol]` the next, 0 the end.
    private func lookUpSysV(_ wanted: [UInt8], table: UInt64) throws(ELFError) -> Bool {
        let header = try file.read(at: table, count: 8, what: "the hash table header")
        let buckets = UInt64(header.u32(0))
        let chains = UInt64(header.u32(4))
        guard buckets > 0 else { return false }
        var hash: UInt32 = 0
        for byte in wanted {
            hash = (hash << 4) &+ UInt32(byte)
            let high = hash & 0xF000_0000
            if high != 0 { hash ^= high >> 24 }
            hash &= ~high
        }
        var index = UInt64(try file.read(at: table + 8 + UInt64(hash) % buckets * 4, count: 4, what: "a hash bucket").u32(0))
        var steps = 0
        while index != 0 {
            guard index < chains, steps < Self.maximumChainSteps else {
                throw ELFError("the hash table's chain runs past its \(chains) symbols or loops")
            }
            if try symbol(index, is: wanted) { return true }
            index = UInt64(try file.read(at: table + 8 + (buckets + index) * 4, count: 4, what: "a hash chain").u32(0))
            steps += 1
        }
        return false
    }

    /// A defined (st_shndx != SHN_UNDEF), global or weak, default- or protected-visibility function.
    private static func isExportedFunction(_ bytes: [UInt8], at base: Int) -> Bool {
        let info = bytes[base + 4]
        let binding = info >> 4, type = info & 0xF
        let visibility = bytes[base + 5] & 0x3
        let section = bytes.u16(base + 6)
        return (binding == 1 || binding == 2) && type == 2 && (visibility == 0 || visibility == 3) && section != 0
    }

    /// Whether the NUL-terminated string at `offset` in `strings` is `wanted`.
    private static func name(_ strings: [UInt8], at offset: Int, is wanted: [UInt8]) -> Bool {
        guard offset >= 0, strings.count - offset > wanted.count else { return false }
        for (i, byte) in wanted.enumerated() where strings[offset + i] != byte { return false }
        return strings[offset + wanted.count] == 0
    }
}
