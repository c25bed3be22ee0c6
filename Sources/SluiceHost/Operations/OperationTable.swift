import SluiceCore
import SluiceFunctions

/// Every built-in operation, once: the pipeline file's `op:` names and the typed API's methods both come here.
/// Adding one means: its computation in SluiceCore (a `KeyedOperator.Kind` case or a `CollectingStage`), its entry
/// here (a declaration and its place in `all`), a typed `DStream` method that builds it through the entry, its tests
/// and its section in docs/operators.md (`OperationTableTests` checks that every entry has one).
extension BuiltinOperation {
    public static let all: [BuiltinOperation] = [
        countByValue, reduceByKey, count, reduce, countByWindow, reduceByWindow, countByValueAndWindow, reduceByKeyAndWindow,
        updateStateByKey, mapWithState, window, union, repartition, groupByKey, join, leftOuterJoin, rightOuterJoin,
        fullOuterJoin, cogroup, map, filter,
    ]

    public static let countByValue = keyed(.countByValue, "(record, count) for each distinct record of the batch, a keyed one as (key,value)")
    public static let reduceByKey = keyed(.reduceByKey, "(key, f(values)) for each key of the batch")
    public static let count = keyed(.count, "one record per batch: how many records it has")
    public static let reduce = keyed(.reduce, "one record per batch: f over every value")
    public static let countByWindow = keyed(.countByWindow, "one record per slide: how many records the window holds, once it has held one")
    public static let reduceByWindow = keyed(.reduceByWindow, "one record per slide: f over every value in the window")
    public static let countByValueAndWindow = keyed(.countByValueAndWindow, "(record, count) over the window, per slide")
    public static let reduceByKeyAndWindow = keyed(.reduceByKeyAndWindow, "(key, f(values)) over the window, per slide")
    public static let updateStateByKey = keyed(
        .updateStateByKey, "(key, state) for every key ever seen, the state folded over each batch's values"
    )
    public static let mapWithState = keyed(.mapWithState, "(key, state) for the keys of the batch; a key idle for more than `timeout` is forgotten")
    public static let window = BuiltinOperation(
        "window", "every slide, the records of the last `window`",
        inputs: .oneOrMore, keys: [.window, .slide], required: [.window]
    ) { arguments, inputs, _ in
        .collecting(WindowStage(window: arguments.window, slide: arguments.slide), inputs: inputs)
    }
    public static let union = BuiltinOperation("union", "the records of several streams as one", inputs: .twoOrMore) { _, inputs, _ in
        .union(inputs: inputs)
    }
    public static let repartition = BuiltinOperation(
        "repartition", "the records spread evenly over `partitions` tasks",
        inputs: .one, keys: [.partitions], required: [.partitions]
    ) { arguments, inputs, parallelism in
        .collecting(RepartitionStage(partitions: arguments.partitions ?? parallelism), inputs: inputs)
    }
    public static let groupByKey = grouping(.groupByKey, "(key, [values]) for each key of the batch")
    public static let join = grouping(.join, "(key, (v, w)) for each pair of records with the key in both streams")
    public static let leftOuterJoin = grouping(.leftOuterJoin, "(key, (v, Some(w) or None)) for each left record")
    public static let rightOuterJoin = grouping(.rightOuterJoin, "(key, (Some(v) or None, w)) for each right record")
    public static let fullOuterJoin = grouping(.fullOuterJoin, "(key, (v or None, w or None)) for each key of either stream")
    public static let cogroup = grouping(.cogroup, "(key, ([v...], [w...])) for each key of either stream")
    public static let map = perValue(.map, "each value replaced by what a library function returns")
    public static let filter = perValue(.filter, "the records for which a library function returns true")

    /// A keyed operator: its keys follow from what the operator is (windowed, takes a function, keeps keys).
    private static func keyed(_ kind: KeyedOperator.Kind, _ summary: String) -> BuiltinOperation {
        var keys: Set<OperationKey> = [.dropZero]
        if kind.isKeyed { keys.insert(.partitions) }
        if kind.takesFunction { keys.insert(.function) }
        if kind.isWindowed { keys.formUnion([.window, .slide, .inverse]) }
        if kind == .mapWithState { keys.insert(.timeout) }
        return BuiltinOperation(
            kind.rawValue, summary,
            inputs: .oneOrMore, keys: keys, required: kind.isWindowed ? [.window] : [],
            function: kind.takesFunction ? .reduce : .none
        ) { arguments, inputs, parallelism in
            let partitions = arguments.partitions ?? parallelism
            if let function = arguments.stateFunction {
                precondition(kind == .updateStateByKey || kind == .mapWithState, "\(kind.rawValue) takes no state function")
                let mode: StateFunctionStage.Mode = kind == .mapWithState ? .mapWithState(timeout: arguments.timeout) : .updateStateByKey
                return .collecting(StateFunctionStage(mode, function: function, partitions: partitions), inputs: inputs)
            }
            let op = KeyedOperator(
                kind,
                function: arguments.function,
                window: arguments.window,
                slide: arguments.slide,
                inverse: arguments.inverse,
                dropZero: arguments.dropZero,
                custom: arguments.reducer,
                timeout: arguments.timeout
            )
            return .keyed(KeyedStage(op, partitions: partitions), inputs: inputs)
        }
    }

    /// groupByKey, a join or cogroup: records grouped by key across one stream, or two.
    private static func grouping(_ kind: GroupStage.Kind, _ summary: String) -> BuiltinOperation {
        BuiltinOperation(kind.rawValue, summary, inputs: kind.inputs == 1 ? .oneOrMore : .two, keys: [.partitions]) {
            arguments, inputs, parallelism in
            let stage = GroupStage(kind, partitions: arguments.partitions ?? parallelism, output: arguments.groupOutput ?? SparkTextGroupOutput())
            return .collecting(stage, inputs: inputs)
        }
    }

    /// map or filter with a function library's function.
    private static func perValue(_ kind: FunctionKind, _ summary: String) -> BuiltinOperation {
        BuiltinOperation(kind.rawValue, summary, inputs: .one, keys: [.function], required: [.function], function: .perValue(kind)) {
            arguments, inputs, _ in
            guard let function = arguments.perValue else { preconditionFailure("\(kind.rawValue) built without its library function") }
            return .transform(FunctionTransform(function), input: inputs[0])
        }
    }
}
