import SluiceSDK

/// `split`: one line in, its words out — the flatMap of Spark's word count.
///
/// Separators are single bytes (ASCII); runs of separators produce no empty words unless `keep_empty` is set.
/// With `output: pairs` each word is emitted as the keyed record (word, 1), ready for `reduceByKey`.
public final class SplitTransform: TransformPlugin {
    public struct Configuration: Decodable, Sendable {
        var separators: String
        var output: String
        var keep_empty: Bool
        var lowercase: Bool
    }

    public static let info = PluginInfo(
        name: "split",
        version: "1.0.0",
        description: "Splits each record into words (flatMap); optionally emits (word, 1) pairs",
        options: [
            .string(
                "separators",
                description: "Every character of this string separates words (ASCII only)",
                default: " \t"
            ),
            .string(
                "output",
                description: "values: each word is a record; pairs: each word is a keyed record (word, 1)",
                default: "values",
                allowed: ["values", "pairs"]
            ),
            .boolean("keep_empty", description: "Emit empty words between adjacent separators", default: false),
            .boolean("lowercase", description: "Lower-case ASCII letters of each word", default: false),
        ],
        concurrent: true
    )

    /// Separator membership for each byte value.
    private let isSeparator: [Bool]
    /// The search 64 bytes at a time, or nil for more separators than it takes (the byte-table loop does it all
    /// then).
    private let wordSearch: WordSearch?
    private let pairs: Bool
    private let keepEmpty: Bool
    private let lowercase: Bool

    public init(configuration: Configuration, context: PluginContext) throws {
        var table = [Bool](repeating: false, count: 256)
        for scalar in configuration.separators.unicodeScalars {
            guard scalar.isASCII else {
                throw PluginError("configuration key 'separators': '\(scalar)' is not an ASCII character")
            }
            table[Int(scalar.value)] = true
        }
        guard table.contains(true) else { throw PluginError("configuration key 'separators': must not be empty") }
        isSeparator = table
        wordSearch = WordSearch((0..<256).filter { table[$0] }.map(UInt8.init))
        pairs = configuration.output == "pairs"
        keepEmpty = configuration.keep_empty
        lowercase = configuration.lowercase
    }

    public func makeOutput(for input: BatchView) -> BatchBuilder {
        BatchBuilder(
            valueType: pairs ? .int64 : .bytes,
            keyed: pairs,
            timestamps: input.hasTimestamps,
            expectedCount: input.count * 8,
            expectedBytes: pairs ? 0 : Int(input.raw.value_data_len)
        )
    }

    public func transform(_ input: BatchView, into output: inout BatchBuilder) throws {
        guard input.valueType == .bytes else { throw PluginError("split needs text values, got integers") }
        var scratch = [UInt8]()
        guard let search = wordSearch else {
            isSeparator.withUnsafeBufferPointer { sep in
                for i in 0..<input.count { splitByTable(input, i, sep, &output, &scratch) }
            }
            return
        }
        // The 64 bytes searched at a time may reach past a line into the next ones (they are contiguous in the
        // batch); only the last lines' reach past the batch's bytes, and those are searched in a copy.
        let dataEnd = input.raw.value_data.map { UnsafeRawPointer($0) + Int(input.raw.value_data_len) }
        let tail = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        defer { tail.deallocate() }
        let plain = !lowercase && !pairs && !input.hasTimestamps
        for i in 0..<input.count {
            let line = input.value(at: i)
            let timestamp = input.timestamp(at: i)
            guard let base = line.baseAddress?.assumingMemoryBound(to: UInt8.self), let dataEnd else {
                if keepEmpty { emit(UnsafeRawBufferPointer(start: nil, count: 0), timestamp, &output, &scratch) }
                continue
            }
            let n = line.count
            var start = 0
            var block = 0
            while block < n {
                let p = base + block
                var mask: UInt64
                if UnsafeRawPointer(p) + 64 <= dataEnd {
                    mask = search.mask(p)
                } else {
                    tail.update(from: p, count: UnsafeRawPointer(p).distance(to: dataEnd))
                    mask = search.mask(tail)
                }
                if n &- block < 64 { mask &= (1 &<< UInt64(n &- block)) &- 1 }
                while mask != 0 {
                    let j = block &+ mask.trailingZeroBitCount
                    if j > start || keepEmpty {
                        let word = UnsafeRawBufferPointer(start: base + start, count: j &- start)
                        // The word count's case, appended here: a call per word to `emit` is not inlined.
                        if plain { output.append(word) } else { emit(word, timestamp, &output, &scratch) }
                    }
                    start = j &+ 1
                    mask &= mask &- 1
                }
                block &+= 64
            }
            if n > start || (keepEmpty && n > 0) {
                let word = UnsafeRawBufferPointer(start: base + start, count: n &- start)
                if plain { output.append(word) } else { emit(word, timestamp, &output, &scratch) }
            }
        }
    }

    /// Record `i` split a byte at a time against the separator table: for more separators than `WordSearch` takes.
    private func splitByTable(
        _ input: BatchView,
        _ i: Int,
        _ sep: UnsafeBufferPointer<Bool>,
        _ output: inout BatchBuilder,
        _ scratch: inout [UInt8]
    ) {
        let line = input.value(at: i)
        let timestamp = input.timestamp(at: i)
        guard let base = line.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            if keepEmpty { emit(UnsafeRawBufferPointer(start: nil, count: 0), timestamp, &output, &scratch) }
            return
        }
        let n = line.count
        var start = 0
        for j in 0..<n where sep[Int(base[j])] {
            if j > start || keepEmpty {
                emit(UnsafeRawBufferPointer(start: base + start, count: j - start), timestamp, &output, &scratch)
            }
            start = j + 1
        }
        if n > start || (keepEmpty && n > 0) {
            emit(UnsafeRawBufferPointer(start: base + start, count: n - start), timestamp, &output, &scratch)
        }
    }

    @inline(__always)
    private func emit(
        _ word: UnsafeRawBufferPointer,
        _ timestamp: Int64?,
        _ output: inout BatchBuilder,
        _ scratch: inout [UInt8]
    ) {
        var word = word
        if lowercase {
            scratch.removeAll(keepingCapacity: true)
            for byte in word { scratch.append(byte >= 65 && byte <= 90 ? byte + 32 : byte) }
            scratch.withUnsafeBytes { appendWord($0, timestamp, &output) }
            return
        }
        if word.baseAddress == nil { word = UnsafeRawBufferPointer(start: nil, count: 0) }
        appendWord(word, timestamp, &output)
    }

    @inline(__always)
    private func appendWord(_ word: UnsafeRawBufferPointer, _ timestamp: Int64?, _ output: inout BatchBuilder) {
        if pairs {
            output.append(key: word, value: 1)
        } else {
            output.append(word)
        }
        if let timestamp { output.setLastTimestamp(timestamp) }
    }
}
