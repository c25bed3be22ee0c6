import SluiceCore
import SluiceFunctions

/// The values an operation is built with: what a pipeline file's stage keys say (checked by the parser against the
/// operation's declaration), or what a typed `DStream` method passes. Durations are in batches.
public struct OperationArguments: @unchecked Sendable {  // the functions and outputs it holds are Sendable or immutable
    /// A built-in reduce function (`function: sum`); nil for the operation's default.
    public var function: ReduceFunction?
    /// A reducer from a function library, a reducer plugin or a Swift closure, in place of `function`.
    public var reducer: (any CustomReducer)?
    /// The library function of `map` and `filter`.
    public var perValue: NativeFunction?
    /// `updateStateByKey` and `mapWithState` with a user's function over per-key state (a Swift closure, an
    /// update-state plugin), in place of a reduce function.
    public var stateFunction: (any KeyedStateFunction)?
    /// How `groupByKey`, the joins and `cogroup` write a key's result; Spark's text when nil (the typed API writes
    /// typed values).
    public var groupOutput: (any GroupOutput)?
    public var window: Int
    public var slide: Int
    public var inverse: Bool
    public var dropZero: Bool
    public var timeout: Int
    /// Tasks to spread the records over; nil for the pipeline's parallelism.
    public var partitions: Int?

    public init(
        function: ReduceFunction? = nil,
        reducer: (any CustomReducer)? = nil,
        perValue: NativeFunction? = nil,
        stateFunction: (any KeyedStateFunction)? = nil,
        groupOutput: (any GroupOutput)? = nil,
        window: Int = 1,
        slide: Int = 1,
        inverse: Bool = false,
        dropZero: Bool = false,
        timeout: Int = 0,
        partitions: Int? = nil
    ) {
        self.function = function
        self.reducer = reducer
        self.perValue = perValue
        self.stateFunction = stateFunction
        self.groupOutput = groupOutput
        self.window = window
        self.slide = slide
        self.inverse = inverse
        self.dropZero = dropZero
        self.timeout = timeout
        self.partitions = partitions
    }
}
