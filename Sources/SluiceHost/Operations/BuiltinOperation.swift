import SluiceCore
import SluiceFunctions

/// A built-in operation of `op:` stages and of the typed API, declared once, in the operation table
/// (`OperationTable.swift`): its name, the keys it takes, the streams it reads and how it is built. The parser checks
/// a stage's keys and inputs against the declaration, the builder resolves the function it declares, and both the
/// pipeline file and `DStream`'s methods build their graph nodes through `node(_:inputs:parallelism:)`.
///
/// What defines a built operation's saved state (its fingerprint) comes from what it is built with:
/// `KeyedOperator.fingerprint` formats the parameters of every keyed operator and `WindowStage` its length and slide,
/// so a new operation built from the same parts needs no fingerprint code of its own.
public struct BuiltinOperation: Sendable {
    /// How many streams an operation reads.
    public enum Inputs: Sendable {
        case one
        /// Exactly two, `from: [left, right]`.
        case two
        /// One, or several read as their union.
        case oneOrMore
        /// Two or more.
        case twoOrMore

        func accepts(_ count: Int) -> Bool {
            switch self {
            case .one: count == 1
            case .two: count == 2
            case .oneOrMore: count >= 1
            case .twoOrMore: count >= 2
            }
        }

        var phrase: String {
            switch self {
            case .one: "one stream"
            case .two: "two streams (from: [left, right])"
            case .oneOrMore: "one or more streams"
            case .twoOrMore: "two or more streams (from: [a, b])"
            }
        }
    }

    /// What an operation's `function:` names.
    public enum FunctionRole: Sendable, Equatable {
        /// It takes no function (it counts, or collects).
        case none
        /// A reduce function: a built-in one (`sum`, `max`...), `LIBRARY.FUNCTION` of a function library, or a
        /// reducer plugin.
        case reduce
        /// A function of a function library called once per value.
        case perValue(FunctionKind)
    }

    public let name: String
    /// One line on what it computes (`sluice validate` and error messages quote it; docs/operators.md explains it).
    public let summary: String
    public let inputs: Inputs
    /// The keys it takes besides `from` and `op`.
    public let keys: Set<OperationKey>
    /// The keys it cannot do without.
    public let required: Set<OperationKey>
    public let function: FunctionRole
    private let make: @Sendable (OperationArguments, _ inputs: [Int], _ parallelism: Int) -> StreamGraph.Node

    init(
        _ name: String,
        _ summary: String,
        inputs: Inputs,
        keys: Set<OperationKey> = [],
        required: Set<OperationKey> = [],
        function: FunctionRole = .none,
        make: @escaping @Sendable (OperationArguments, _ inputs: [Int], _ parallelism: Int) -> StreamGraph.Node
    ) {
        precondition(required.isSubset(of: keys), "\(name): a required key must be one it takes")
        precondition(keys.contains(.function) == (function != .none), "\(name): 'function' and its role go together")
        self.name = name
        self.summary = summary
        self.inputs = inputs
        self.keys = keys
        self.required = required
        self.function = function
        self.make = make
    }

    /// The graph node of this operation built with `arguments`, reading the graph nodes `inputs`; `parallelism`
    /// spreads it when the arguments give no `partitions`. The arguments must satisfy the declaration (the parser
    /// checks a file's; a typed method passes its own).
    public func node(_ arguments: OperationArguments, inputs: [Int], parallelism: Int) -> StreamGraph.Node {
        precondition(self.inputs.accepts(inputs.count), "\(name) reads \(self.inputs.phrase), got \(inputs.count)")
        return make(arguments, inputs, parallelism)
    }

    /// Whether it has a window (and so `window` and `slide`).
    public var isWindowed: Bool { keys.contains(.window) }

    /// The operation called `name`.
    public static func named(_ name: String) -> BuiltinOperation? { all.first { $0.name == name } }

    /// Which operations take `key`, for "does not apply" messages.
    static func takers(of key: OperationKey) -> String {
        let names = all.filter { $0.keys.contains(key) }.map(\.name).joined(separator: ", ")
        return [.window, .slide, .inverse].contains(key) ? "windowed operations (\(names))" : names
    }
}
