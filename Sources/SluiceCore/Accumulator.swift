#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SluiceSDK

/// The built-in reduce functions of keyed and windowed operators.
///
/// Numbers are 64-bit integers until a value with a fraction (or an overflow) makes the result a double. `min`,
/// `max`, `first` and `last` also take text; `min`/`max` order every number before every text, text by bytes.
public enum ReduceFunction: String, CaseIterable, Sendable, Hashable {
    case sum, count, min, max, mean, first, last

    /// Whether the function has an inverse, so a window can subtract what leaves it instead of recomputing.
    public var hasInverse: Bool {
        switch self {
        case .sum, .count, .mean: true
        case .min, .max, .first, .last: false
        }
    }

    /// Whether the function needs numeric values (text is discarded and counted).
    var needsNumbers: Bool { self == .sum || self == .mean }
}

/// The running result of a reduce function for one key: what a window or a state holds per key.
public struct Accumulator: BitwiseCopyable, Sendable, Equatable {
    public enum Kind: UInt8, Sendable, BitwiseCopyable { case int = 0, double = 1, text = 2 }
    /// Records folded in, minus those inverted out: a key whose count returns to 0 has left its window.
    public var records: Int64
    /// The integer or the double's bits, as `kind` says (one field keeps an entry at 48 bytes).
    private var payload: UInt64
    public var kind: Kind
    /// For text: where the bytes are in the owning table's value arena.
    var textStart: UInt32
    var textLength: UInt32

    init(records: Int64, int: Int64 = 0, double: Double = 0, kind: Kind = .int, textStart: UInt32 = 0, textLength: UInt32 = 0) {
        self.records = records
        payload = kind == .double ? double.bitPattern : UInt64(bitPattern: int)
        self.kind = kind
        self.textStart = textStart
        self.textLength = textLength
    }

    /// The value when `kind` is `.int`.
    public var int: Int64 {
        get { Int64(bitPattern: payload) }
        set { payload = UInt64(bitPattern: newValue) }
    }

    /// The value when `kind` is `.double`.
    public var double: Double {
        get { Double(bitPattern: payload) }
        set { payload = newValue.bitPattern }
    }

    var asDouble: Double { kind == .double ? double : Double(int) }
}

/// A record's value as a reduce function sees it.
enum ParsedValue {
    case int(Int64)
    case double(Double)
    case text(UnsafeRawBufferPointer)

    /// Reads value `i` of `batch`: an int64 column, or text that is an integer, a decimal number, or neither.
    static func of(_ batch: BatchView, at i: Int) -> ParsedValue {
        if batch.valueType == .int64 { return .int(batch.int64Value(at: i)) }
        let bytes = batch.value(at: i)
        if let integer = parseInteger(bytes) { return .int(integer) }
        if let number = parseDecimal(bytes) { return .double(number) }
        return .text(bytes)
    }
}

extension BatchView {
    /// Value `i` as an integer: an `int64` value, or text that is a decimal integer; nil otherwise.
    public func integer(at i: Int) -> Int64? {
        valueType == .int64 ? int64Value(at: i) : parseInteger(value(at: i))
    }

    /// Value `i` as a double: an `int64` value, or text that is an integer or a decimal number; nil otherwise.
    public func number(at i: Int) -> Double? {
        if valueType == .int64 { return Double(int64Value(at: i)) }
        let bytes = value(at: i)
        if let integer = parseInteger(bytes) { return Double(integer) }
        return parseDecimal(bytes)
    }
}

/// Parses a finite decimal number (`2.5`, `-1e3`); nil for anything else, including `nan` and `inf`.
func parseDecimal(_ bytes: UnsafeRawBufferPointer) -> Double? {
    guard bytes.count > 0, bytes.count < 64 else { return nil }
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"),
            UInt8(ascii: "e"), UInt8(ascii: "E"):
            continue
        default:
            return nil
        }
    }
    var buffer = [CChar](repeating: 0, count: bytes.count + 1)
    for (i, byte) in bytes.enumerated() { buffer[i] = CChar(bitPattern: byte) }
    return buffer.withUnsafeBufferPointer { text -> Double? in
        var end: UnsafeMutablePointer<CChar>?
        let value = strtod(text.baseAddress!, &end)
        guard let end, end - UnsafeMutablePointer(mutating: text.baseAddress!) == bytes.count, value.isFinite else {
            return nil
        }
        return value
    }
}

extension KeyTable where Value == Accumulator {
    /// The accumulator of one record's value, with text copied into this table; nil when `function` cannot use
    /// the value (text for `sum` or `mean`).
    func lift(_ value: ParsedValue, _ function: ReduceFunction) -> Accumulator? {
        if function == .count { return Accumulator(records: 1) }
        switch value {
        case .int(let v): return Accumulator(records: 1, int: v)
        case .double(let v): return Accumulator(records: 1, double: v, kind: .double)
        case .text(let bytes):
            if function.needsNumbers { return nil }
            let start = valueBytes.append(bytes)
            return Accumulator(records: 1, kind: .text, textStart: start, textLength: UInt32(bytes.count))
        }
    }

    /// The text of an accumulator of this table.
    func text(of accumulator: Accumulator) -> UnsafeRawBufferPointer {
        valueBytes.bytes(at: accumulator.textStart, count: accumulator.textLength)
    }

    /// `accumulator` from `source`, re-homed into this table (text copied into this table's arena).
    func adopt(_ accumulator: Accumulator, from source: KeyTable<Accumulator>) -> Accumulator {
        guard accumulator.kind == .text, source !== self else { return accumulator }
        var copy = accumulator
        copy.textStart = valueBytes.append(source.text(of: accumulator))
        return copy
    }

    /// Folds `later` (an accumulator of this table) into `earlier`: the function's combine.
    func combine(_ earlier: inout Accumulator, _ later: Accumulator, _ function: ReduceFunction) {
        let records = earlier.records &+ later.records
        switch function {
        case .count:
            break
        case .sum, .mean:
            add(&earlier, later, sign: 1)
        case .min:
            if order(later, earlier) < 0 { earlier = later }
        case .max:
            if order(later, earlier) > 0 { earlier = later }
        case .first:
            break
        case .last:
            earlier = later
        }
        earlier.records = records
    }

    /// Takes `leaving` back out of `accumulator`: the inverse of `combine`, for functions that have one.
    func invert(_ accumulator: inout Accumulator, _ leaving: Accumulator, _ function: ReduceFunction) {
        precondition(function.hasInverse, "\(function) has no inverse")
        if function != .count { add(&accumulator, leaving, sign: -1) }
        accumulator.records &-= leaving.records
    }

    private func add(_ a: inout Accumulator, _ b: Accumulator, sign: Int64) {
        if a.kind == .int && b.kind == .int {
            let (sum, overflow) = a.int.addingReportingOverflow(sign &* b.int)
            if !overflow {
                a.int = sum
                return
            }
        }
        let sum = a.asDouble + Double(sign) * b.asDouble
        a.kind = .double
        a.double = sum
    }

    /// Orders accumulators for min/max: numbers before text; numbers by value; text by bytes, then length.
    private func order(_ a: Accumulator, _ b: Accumulator) -> Int {
        switch (a.kind == .text, b.kind == .text) {
        case (false, true): return -1
        case (true, false): return 1
        case (false, false):
            if a.kind == .int && b.kind == .int { return a.int < b.int ? -1 : (a.int > b.int ? 1 : 0) }
            return a.asDouble < b.asDouble ? -1 : (a.asDouble > b.asDouble ? 1 : 0)
        case (true, true):
            let x = text(of: a)
            let y = text(of: b)
            let common = Swift.min(x.count, y.count)
            if common > 0, let xa = x.baseAddress, let ya = y.baseAddress {
                let c = memcmp(xa, ya, common)
                if c != 0 { return c < 0 ? -1 : 1 }
            }
            return x.count < y.count ? -1 : (x.count > y.count ? 1 : 0)
        }
    }

    /// Folds every entry of `other` whose key is in hash partition `partition` of `partitions` into this table.
    func fold(_ other: KeyTable<Accumulator>, _ function: ReduceFunction, partition: Int = 0, of partitions: Int = 1) {
        other.forEachIndex { i in
            let hash = other.hash(at: i)
            if partitions > 1 && hashPartition(hash, partitions) != partition { return }
            let incoming = other.value(at: i)
            if let existing = find(other.key(at: i), hash: hash) {
                var value = self.value(at: existing)
                combine(&value, adopt(incoming, from: other), function)
                setValue(value, at: existing)
            } else {
                let adopted = adopt(incoming, from: other)
                upsert(other.key(at: i), hash: hash, initial: { adopted }, update: { _ in })
            }
        }
    }

    /// Takes every entry of `leaving` back out of this table, removing keys that no record supports any more.
    func unfold(_ leaving: KeyTable<Accumulator>, _ function: ReduceFunction) {
        leaving.forEachIndex { i in
            guard let existing = find(leaving.key(at: i), hash: leaving.hash(at: i)) else {
                preconditionFailure("a window subtracted a key it never added")
            }
            var value = self.value(at: existing)
            invert(&value, leaving.value(at: i), function)
            if value.records == 0 {
                remove(at: existing)
            } else {
                setValue(value, at: existing)
            }
        }
        if needsCompaction { compact() }
    }

    /// Rewrites the value arena when most of it is text no accumulator refers to any more (a `last` replaced it).
    func compactValueBytesIfWasteful() {
        var live = 0
        forEachIndex { i in
            let value = value(at: i)
            if value.kind == .text { live += Int(value.textLength) }
        }
        guard valueBytes.count > 65_536 && valueBytes.count > live * 2 else { return }
        var fresh = ByteArena()
        forEachIndex { i in
            var value = value(at: i)
            guard value.kind == .text else { return }
            value.textStart = fresh.append(text(of: value))
            setValue(value, at: i)
        }
        valueBytes = fresh
    }
}
