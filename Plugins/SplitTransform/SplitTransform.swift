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
    /// The search eight bytes at a time, or nil when there are more separators than it pays to test a word for
    /// (the byte-table loop does it all then).
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
        let search = wordSearch
        isSeparator.withUnsafeBufferPointer { sep in
            for i in 0..<input.count {
                let line = input.value(at: i)
                let timestamp = input.timestamp(at: i)
                guard let base = line.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                    if keepEmpty { emit(UnsafeRawBufferPointer(start: nil, count: 0), timestamp, &output, &scratch) }
                    continue
                }
                let n = line.count
                var start = 0
                var j = 0
                while true {
                    var found = false
                    if let search {
                        while j &+ 8 <= n {
                            let word = UInt64(littleEndian: UnsafeRawPointer(base + j).loadUnaligned(as: UInt64.self))
                            let matches = search.matches(word)
                            if matches != 0 {
                                j &+= matches.trailingZeroBitCount >> 3
                                found = true
                                break
                            }
                            j &+= 8
                        }
                    }
                    // The line's last few bytes (shorter than a word), or every byte without the word-wide search.
                    if !found {
                        while j < n && !sep[Int(base[j])] { j += 1 }
                    }
                    guard j < n else { break }
                    if j > start || keepEmpty {
                        emit(UnsafeRawBufferPointer(start: base + start, count: j - start), timestamp, &output, &scratch)
                    }
                    j += 1
                    start = j
                }
                if n > start || (keepEmpty && n > 0) {
                    emit(UnsafeRawBufferPointer(start: base + start, count: n - start), timestamp, &output, &scratch)
                }
            }
            _ = sep
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
