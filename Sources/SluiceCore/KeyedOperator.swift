import SluiceSDK

/// A built-in operator that needs all records of a key (or of the whole stream): the engine hash-partitions its
/// input and runs it per partition, keeping state across batches where the operator has any.
public struct KeyedOperator: @unchecked Sendable, Hashable, CustomStringConvertible {  // `custom` is Sendable
    public enum Kind: String, Sendable, CaseIterable {
        /// (record, count) for each distinct record of the batch: the value, or `(key,value)` for a keyed record.
        case countByValue
        /// (key, f(values)) for each key of the batch.
        case reduceByKey
        /// One record: the number of records in the batch.
        case count
        /// One record: f over every value of the batch (nothing for an empty batch).
        case reduce
        /// One record per slide: the number of records in the window; nothing until a window has held a record.
        case countByWindow
        /// One record per slide: f over every value in the window.
        case reduceByWindow
        /// (record, count) over the window, per slide, records counted whole as in countByValue.
        case countByValueAndWindow
        /// (key, f(values)) over the window, per slide.
        case reduceByKeyAndWindow
        /// (key, state) for every key ever seen: state = f(state, the batch's values of the key).
        case updateStateByKey
        /// (key, state) for the keys of the batch only, state as in updateStateByKey; a key idle for more than
        /// `timeout` batches is removed.
        case mapWithState

        /// What the operator groups by.
        enum Grouping { case value, key, nothing }

        var grouping: Grouping {
            switch self {
            case .countByValue, .countByValueAndWindow: .value
            case .reduceByKey, .reduceByKeyAndWindow, .updateStateByKey, .mapWithState: .key
            case .count, .reduce, .countByWindow, .reduceByWindow: .nothing
            }
        }

        /// Whether the operator has a window (and so `window`/`slide`).
        public var isWindowed: Bool {
            switch self {
            case .countByWindow, .reduceByWindow, .countByValueAndWindow, .reduceByKeyAndWindow: true
            default: false
            }
        }

        /// Whether the operator takes a `function` (the others count).
        public var takesFunction: Bool {
            switch self {
            case .reduceByKey, .reduce, .reduceByWindow, .reduceByKeyAndWindow, .updateStateByKey, .mapWithState: true
            default: false
            }
        }

        /// Whether the output has keys.
        public var isKeyed: Bool { grouping != .nothing }
    }

    public var kind: Kind
    /// The reduce function (`count` for the counting operators).
    public var function: ReduceFunction
    /// Window length and slide in batches, for windowed operators.
    public var window: Int
    public var slide: Int
    /// Subtract what leaves the window with the function's inverse instead of recomputing the window each slide.
    public var inverse: Bool
    /// Leave out output records whose value is zero.
    public var dropZero: Bool
    /// A reducer from a function library or a plugin, instead of `function`.
    public var custom: (any CustomReducer)?
    /// mapWithState: a key that goes more than this many batches without records is removed; 0 keeps it forever.
    public var timeout: Int

    /// How values combine: `function`, or the custom reducer.
    public var reducer: Reducer { custom.map { Reducer(custom: $0) } ?? Reducer(function) }

    /// - Parameters:
    ///   - window, slide: in batches; both 1 for operators without a window.
    public init(
        _ kind: Kind,
        function: ReduceFunction? = nil,
        window: Int = 1,
        slide: Int = 1,
        inverse: Bool = false,
        dropZero: Bool = false,
        custom: (any CustomReducer)? = nil,
        timeout: Int = 0
    ) {
        self.kind = kind
        self.function = kind.takesFunction ? (function ?? .sum) : .count
        self.window = kind.isWindowed ? window : 1
        self.slide = kind.isWindowed ? slide : 1
        self.inverse = kind.isWindowed && inverse
        self.dropZero = dropZero
        self.custom = kind.takesFunction ? custom : nil
        self.timeout = kind == .mapWithState ? max(0, timeout) : 0
        precondition(self.window >= 1 && self.slide >= 1, "window and slide must be at least one batch")
        precondition(!self.inverse || reducer.hasInverse, "\(reducer.name) has no inverse")
    }

    /// What defines the operator's state: a snapshot taken under one fingerprint is refused under another.
    /// (The number of partitions is not part of it: a snapshot is re-partitioned on restore.)
    public var fingerprint: String {
        "\(kind.rawValue)(function=\(reducer.name),window=\(window),slide=\(slide),inverse=\(inverse)"
            + (kind == .mapWithState ? ",timeout=\(timeout))" : ")")
    }

    public var description: String { fingerprint }

    public static func == (a: KeyedOperator, b: KeyedOperator) -> Bool {
        a.fingerprint == b.fingerprint && a.dropZero == b.dropZero && a.custom === b.custom
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(fingerprint) }

    /// The plain word count: counts by value without a window, on the fast path (counts only, no accumulators).
    var isPlainCountByValue: Bool { kind == .countByValue }

    /// The custom reducer's value type, when there is one.
    var customType: ReducerValueType? { custom?.valueType }
}
