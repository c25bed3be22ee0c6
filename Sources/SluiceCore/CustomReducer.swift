/// A reduce function supplied from outside the engine — a C library function (through libffi) or a reducer plugin
/// (ABI 1.1) — that combines the values of many keys in one call.
///
/// Values are 8-byte slots holding an `int64` or the bits of a `double`, as `valueType` says. The function must be
/// associative and commutative (as Spark's reduce functions must), because the engine combines partial results in
/// whatever grouping suits it: a tree within a task, then task by task, then window by window.
public protocol CustomReducer: AnyObject, Sendable {
    /// The name pipelines use (`library.function` or the plugin's name).
    var name: String { get }
    var valueType: ReducerValueType { get }
    /// Whether `invert` is available, so windows can subtract what leaves them.
    var hasInverse: Bool { get }
    /// `out[i] = a[i] ⊕ b[i]` for `i < n`. `out` may be `a`.
    func combine(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws
    /// `out[i] = a[i] ⊖ b[i]`: takes `b` back out of `a`.
    func invert(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws
}

/// The number type a custom reducer works on.
public enum ReducerValueType: String, Sendable {
    case int64, double
}

/// A custom reducer's failure (a plugin's error status), naming the reducer.
public struct ReducerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How the values of a key combine: a built-in function or a custom reducer.
public struct Reducer: @unchecked Sendable {  // the custom reducer is Sendable; the existential box is immutable
    public let function: ReduceFunction
    public let custom: (any CustomReducer)?

    public init(_ function: ReduceFunction) {
        self.function = function
        custom = nil
    }

    public init(custom: any CustomReducer) {
        function = .sum
        self.custom = custom
    }

    public var hasInverse: Bool { custom?.hasInverse ?? function.hasInverse }
    public var name: String { custom?.name ?? function.rawValue }
}

extension ReducerValueType {
    /// Slot bits of a value of this type, or nil when the value is not one.
    func slot(_ value: ParsedValue) -> UInt64? {
        switch (self, value) {
        case (.int64, .int(let v)): UInt64(bitPattern: v)
        case (.double, .int(let v)): Double(v).bitPattern
        case (.double, .double(let v)): v.bitPattern
        default: nil
        }
    }

    func accumulator(_ slot: UInt64, records: Int64) -> Accumulator {
        switch self {
        case .int64: Accumulator(records: records, int: Int64(bitPattern: slot))
        case .double: Accumulator(records: records, double: Double(bitPattern: slot), kind: .double)
        }
    }
}

extension Accumulator {
    /// The value as a custom reducer's slot.
    var slot: UInt64 { kind == .double ? double.bitPattern : UInt64(bitPattern: int) }
}

/// Reduces the values of each group with as few calls as a tree needs: all groups' pairs at one level go to the
/// reducer in one call, so `n` values in groups of at most `m` cost ⌈log₂ m⌉ calls.
///
/// - Parameters:
///   - values: the values, grouped: `groupOf[i]` is the group of `values[i]`; groups are numbered 0..<`groups`.
/// - Returns: each group's reduced value (groups without values get 0) and its number of values.
func treeReduce(_ values: [UInt64], groupOf: [Int32], groups: Int, _ reducer: any CustomReducer) throws
    -> (values: [UInt64], counts: [Int64])
{
    // Runs of each group's values, contiguous.
    var counts = [Int64](repeating: 0, count: groups)
    for g in groupOf { counts[Int(g)] += 1 }
    var starts = [Int](repeating: 0, count: groups + 1)
    for g in 0..<groups { starts[g + 1] = starts[g] + Int(counts[g]) }
    var fill = starts
    var current = [UInt64](repeating: 0, count: values.count)
    for (i, g) in groupOf.enumerated() {
        current[fill[Int(g)]] = values[i]
        fill[Int(g)] += 1
    }
    var lengths = counts.map(Int.init)
    var a: [UInt64] = []
    var b: [UInt64] = []
    var out: [UInt64] = []
    while lengths.contains(where: { $0 > 1 }) {
        // Pair elements 2k and 2k + 1 of every run; an odd last element stays.
        a.removeAll(keepingCapacity: true)
        b.removeAll(keepingCapacity: true)
        for g in 0..<groups where lengths[g] > 1 {
            var k = 0
            while k + 1 < lengths[g] {
                a.append(current[starts[g] + k])
                b.append(current[starts[g] + k + 1])
                k += 2
            }
        }
        out = [UInt64](repeating: 0, count: a.count)
        try a.withUnsafeBufferPointer { a in
            try b.withUnsafeBufferPointer { b in
                try out.withUnsafeMutableBufferPointer { try reducer.combine(a.baseAddress!, b.baseAddress!, $0.baseAddress!, a.count) }
            }
        }
        var next = 0
        for g in 0..<groups where lengths[g] > 1 {
            let pairs = lengths[g] / 2
            for k in 0..<pairs { current[starts[g] + k] = out[next + k] }
            if lengths[g] % 2 == 1 { current[starts[g] + pairs] = current[starts[g] + lengths[g] - 1] }
            next += pairs
            lengths[g] = pairs + lengths[g] % 2
        }
    }
    return ((0..<groups).map { counts[$0] > 0 ? current[starts[$0]] : 0 }, counts)
}

extension KeyTable where Value == Accumulator {
    /// Folds the entries of `other` (in hash partition `partition` of `partitions`) into this table with a custom
    /// reducer: one call for every key the two tables share.
    func fold(_ other: KeyTable<Accumulator>, custom reducer: any CustomReducer, partition: Int = 0, of partitions: Int = 1) throws {
        var targets: [Int] = []
        var a: [UInt64] = []
        var b: [UInt64] = []
        var records: [Int64] = []
        other.forEachIndex { i in
            let hash = other.hash(at: i)
            if partitions > 1 && hashPartition(hash, partitions) != partition { return }
            let incoming = other.value(at: i)
            if let existing = find(other.key(at: i), hash: hash) {
                targets.append(existing)
                a.append(value(at: existing).slot)
                b.append(incoming.slot)
                records.append(value(at: existing).records &+ incoming.records)
            } else {
                upsert(other.key(at: i), hash: hash, initial: { incoming }, update: { _ in })
            }
        }
        guard !targets.isEmpty else { return }
        var out = [UInt64](repeating: 0, count: targets.count)
        try a.withUnsafeBufferPointer { a in
            try b.withUnsafeBufferPointer { b in
                try out.withUnsafeMutableBufferPointer { try reducer.combine(a.baseAddress!, b.baseAddress!, $0.baseAddress!, a.count) }
            }
        }
        for (j, target) in targets.enumerated() {
            setValue(reducer.valueType.accumulator(out[j], records: records[j]), at: target)
        }
    }

    /// Takes every entry of `leaving` back out of this table with the reducer's inverse, in one call; keys no record
    /// supports any more are removed.
    func unfold(_ leaving: KeyTable<Accumulator>, custom reducer: any CustomReducer) throws {
        var targets: [Int] = []
        var a: [UInt64] = []
        var b: [UInt64] = []
        var records: [Int64] = []
        leaving.forEachIndex { i in
            guard let existing = find(leaving.key(at: i), hash: leaving.hash(at: i)) else {
                preconditionFailure("a window subtracted a key it never added")
            }
            targets.append(existing)
            a.append(value(at: existing).slot)
            b.append(leaving.value(at: i).slot)
            records.append(value(at: existing).records &- leaving.value(at: i).records)
        }
        guard !targets.isEmpty else { return }
        var out = [UInt64](repeating: 0, count: targets.count)
        try a.withUnsafeBufferPointer { a in
            try b.withUnsafeBufferPointer { b in
                try out.withUnsafeMutableBufferPointer { try reducer.invert(a.baseAddress!, b.baseAddress!, $0.baseAddress!, a.count) }
            }
        }
        for (j, target) in targets.enumerated() {
            if records[j] == 0 {
                remove(at: target)
            } else {
                setValue(reducer.valueType.accumulator(out[j], records: records[j]), at: target)
            }
        }
        if needsCompaction { compact() }
    }

    /// Folds with whichever the reducer is.
    func fold(_ other: KeyTable<Accumulator>, _ reducer: Reducer, partition: Int = 0, of partitions: Int = 1) throws {
        if let custom = reducer.custom {
            try fold(other, custom: custom, partition: partition, of: partitions)
        } else {
            fold(other, reducer.function, partition: partition, of: partitions)
        }
    }

    func unfold(_ leaving: KeyTable<Accumulator>, _ reducer: Reducer) throws {
        if let custom = reducer.custom { try unfold(leaving, custom: custom) } else { unfold(leaving, reducer.function) }
    }
}
