import Foundation
import SluiceCore
import SluiceHost
import SluiceLoader
import SluiceSDK
import Synchronization

/// A stream of `Element`s, cut into batches: Spark's `DStream`. Operations return new streams and add to the
/// context's operator graph; nothing runs until `StreamingContext.run`.
///
/// Closures passed to `map`, `flatMap`, `filter` and `reduceByKey` run on several threads at once, so they must
/// not share mutable state. A record that does not read as `Element` (text where a number is expected) is dropped
/// and counted in the run summary.
public struct DStream<Element: StreamValue>: Sendable {
    public let context: StreamingContext
    /// The node of the operator graph that produces this stream.
    public let node: Int

    init(context: StreamingContext, node: Int) {
        self.context = context
        self.node = node
    }

    private func derived<T>(_ prefix: String, _ node: StreamGraph.Node) -> DStream<T> {
        DStream<T>(context: context, node: context.add(prefix, node))
    }

    // MARK: Narrow operations

    /// Each element transformed by `f`.
    public func map<T: StreamValue>(_ f: @escaping @Sendable (Element) -> T) -> DStream<T> {
        derived("map", .transform(ClosureTransform<Element, T> { [f($0)] }, input: node))
    }

    /// Each element replaced by the elements `f` returns.
    public func flatMap<T: StreamValue>(_ f: @escaping @Sendable (Element) -> [T]) -> DStream<T> {
        derived("flatMap", .transform(ClosureTransform<Element, T>(f), input: node))
    }

    /// The elements for which `isIncluded` is true.
    public func filter(_ isIncluded: @escaping @Sendable (Element) -> Bool) -> DStream<Element> {
        derived("filter", .transform(ClosureTransform<Element, Element> { isIncluded($0) ? [$0] : [] }, input: node))
    }

    /// Every batch handed to a transform plugin, whole (Spark's `transform`).
    public func transform(plugin name: String, config: String = "{}") throws -> DStream<String> {
        derived("transform", .transform(try context.instance(name, kind: .transform, config: config), input: node))
    }

    /// This stream and `others` as one.
    public func union(_ others: DStream<Element>...) -> DStream<Element> {
        built(.union, inputs: [node] + others.map(\.node))
    }

    /// The elements spread evenly over `partitions` tasks.
    public func repartition(_ partitions: Int) -> DStream<Element> {
        built(.repartition, OperationArguments(partitions: partitions))
    }

    /// Every `slide`, the elements of the last `length` (both multiples of the batch interval).
    public func window(_ length: Duration, slide: Duration? = nil) -> DStream<Element> {
        let (w, s) = windowBatches(length, slide)
        return built(.window, OperationArguments(window: w, slide: s))
    }

    func windowBatches(_ length: Duration, _ slide: Duration?) -> (Int, Int) {
        (context.batches(length, "window"), context.batches(slide ?? context.batchInterval, "slide"))
    }

    /// A built-in operation of the operation table over this stream (or `inputs`), as the pipeline file builds it.
    func built<T>(_ operation: BuiltinOperation, _ arguments: OperationArguments = OperationArguments(), inputs: [Int]? = nil) -> DStream<T> {
        derived(operation.name, operation.node(arguments, inputs: inputs ?? [node], parallelism: context.parallelism))
    }

    // MARK: Aggregations

    /// One element per batch: the number of elements.
    public func count() -> DStream<Int64> { built(.count) }

    /// For each distinct element, (element, count).
    public func countByValue(partitions: Int? = nil) -> DStream<Pair<Int64>> {
        built(.countByValue, OperationArguments(partitions: partitions))
    }

    /// One element per slide: the number of elements in the window.
    public func countByWindow(_ length: Duration, slide: Duration? = nil, inverse: Bool = true) -> DStream<Int64> {
        let (w, s) = windowBatches(length, slide)
        return built(.countByWindow, OperationArguments(window: w, slide: s, inverse: inverse))
    }

    /// (element, count) over the window, per slide.
    public func countByValueAndWindow(_ length: Duration, slide: Duration? = nil, inverse: Bool = true, partitions: Int? = nil)
        -> DStream<Pair<Int64>>
    {
        let (w, s) = windowBatches(length, slide)
        return built(.countByValueAndWindow, OperationArguments(window: w, slide: s, inverse: inverse, partitions: partitions))
    }

    /// One element per batch: the elements combined with `function` (`sum`, `min`, `max`, `first`, `last`).
    public func reduce(_ function: ReduceFunction) -> DStream<Element> {
        built(.reduce, OperationArguments(function: Self.sameType(function)))
    }

    /// One element per slide: the window's elements combined with `function`.
    public func reduceByWindow(_ function: ReduceFunction, _ length: Duration, slide: Duration? = nil, inverse: Bool = false)
        -> DStream<Element>
    {
        let (w, s) = windowBatches(length, slide)
        return built(.reduceByWindow, OperationArguments(function: Self.sameType(function), window: w, slide: s, inverse: inverse))
    }

    /// One element per batch: the elements combined with `f`, which must be associative and commutative.
    public func reduce(_ f: @escaping @Sendable (Element, Element) -> Element) -> DStream<Element> where Element: ClosureReducible {
        built(.reduce, OperationArguments(reducer: ClosureReducer(f)))
    }

    /// One element per slide: the window's elements combined with `f`; with `inverse`, what leaves the window is
    /// taken out with it instead of recombining the whole window (Spark's `reduceByWindow(f, invF, ...)`).
    public func reduceByWindow(
        _ f: @escaping @Sendable (Element, Element) -> Element,
        inverse: (@Sendable (Element, Element) -> Element)? = nil,
        _ length: Duration,
        slide: Duration? = nil
    ) -> DStream<Element> where Element: ClosureReducible {
        let (w, s) = windowBatches(length, slide)
        return built(.reduceByWindow, OperationArguments(reducer: ClosureReducer(f, inverse: inverse), window: w, slide: s, inverse: inverse != nil))
    }

    /// The functions whose result has the type of their input (`count` and `mean` have their own operations).
    static func sameType(_ function: ReduceFunction) -> ReduceFunction {
        precondition(![.count, .mean].contains(function), "use count()/countByValue() for counts; \(function) changes the type")
        return function
    }

    // MARK: Output

    /// Calls `body` with each batch's elements, in order, after the batch is processed (Spark's `foreachRDD`).
    public func foreachBatch(_ body: @escaping @Sendable (BatchInfo, [Element]) -> Void) {
        context.addSink("foreach", ClosureSink<Element>(body), input: node)
    }

    /// Prints the first `limit` elements of each batch under a header with the batch time (Spark's `print()`).
    public func print(_ limit: Int = 10) {
        foreachBatch { info, elements in
            var text = "-------------------------------------------\nTime: \(info.timeMilliseconds) ms\n"
            text += "-------------------------------------------\n"
            for element in elements.prefix(limit) { text += "\(element)\n" }
            if elements.count > limit { text += "...\n" }
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        }
    }

    /// Writes each batch to a sink plugin.
    public func to(plugin name: String, config: String = "{}") throws {
        context.addSink("sink", try context.instance(name, kind: .sink, config: config), input: node)
    }
}

// MARK: - Pair operations

extension DStream {

    /// For each key of the batch, its values combined with `function` (`sum`, `min`, `max`, `first`, `last`).
    public func reduceByKey<V>(_ function: ReduceFunction, partitions: Int? = nil) -> DStream<Pair<V>> where Element == Pair<V> {
        built(.reduceByKey, OperationArguments(function: Self.sameType(function), partitions: partitions))
    }

    /// For each key of the batch, its values combined with `f`, which must be associative and commutative.
    public func reduceByKey<V: ClosureReducible>(partitions: Int? = nil, _ f: @escaping @Sendable (V, V) -> V) -> DStream<Pair<V>>
    where Element == Pair<V> {
        built(.reduceByKey, OperationArguments(reducer: ClosureReducer(f), partitions: partitions))
    }

    /// For each key, its values over the window combined with `f`; with `inverse`, what leaves the window is
    /// taken out with it instead of recomputing the window.
    public func reduceByKeyAndWindow<V: ClosureReducible>(
        _ f: @escaping @Sendable (V, V) -> V,
        inverse: (@Sendable (V, V) -> V)? = nil,
        _ length: Duration,
        slide: Duration? = nil,
        partitions: Int? = nil
    ) -> DStream<Pair<V>> where Element == Pair<V> {
        let (w, s) = windowBatches(length, slide)
        let reducer = ClosureReducer(f, inverse: inverse)
        return built(.reduceByKeyAndWindow, OperationArguments(reducer: reducer, window: w, slide: s, inverse: inverse != nil, partitions: partitions))
    }

    /// For each key, its values over the window combined with a built-in function.
    public func reduceByKeyAndWindow<V>(
        _ function: ReduceFunction,
        _ length: Duration,
        slide: Duration? = nil,
        inverse: Bool = false,
        partitions: Int? = nil
    ) -> DStream<Pair<V>> where Element == Pair<V> {
        let (w, s) = windowBatches(length, slide)
        let arguments = OperationArguments(function: Self.sameType(function), window: w, slide: s, inverse: inverse, partitions: partitions)
        return built(.reduceByKeyAndWindow, arguments)
    }

    /// A state per key across batches, folded with `function`; emits every key's state every batch.
    public func updateStateByKey<V>(_ function: ReduceFunction, partitions: Int? = nil) -> DStream<Pair<V>> where Element == Pair<V> {
        built(.updateStateByKey, OperationArguments(function: Self.sameType(function), partitions: partitions))
    }

    /// A state per key, folded with `function`; emits the keys of each batch with their new state, and forgets a
    /// key after `timeout` without records.
    public func mapWithState<V>(_ function: ReduceFunction, timeout: Duration? = nil, partitions: Int? = nil) -> DStream<Pair<V>>
    where Element == Pair<V> {
        let batches = timeout.map { context.batches($0, "timeout") } ?? 0
        return built(.mapWithState, OperationArguments(function: Self.sameType(function), timeout: batches, partitions: partitions))
    }

    /// Spark's `updateStateByKey(f)`: every batch, `update` is called for every key that has records or state, with
    /// the key's values of the batch (none for an idle key) and its state (nil for a new key); what it returns is the
    /// key's new state, and nil removes the key. Emits every key's state every batch. The state is checkpointed as
    /// JSON, so it survives a restart with a checkpoint directory.
    public func updateStateByKey<V, S: StreamValue & Codable>(
        partitions: Int? = nil,
        _ update: @escaping @Sendable ([V], S?) -> S?
    ) -> DStream<Pair<S>> where Element == Pair<V> {
        built(.updateStateByKey, OperationArguments(stateFunction: ClosureStateUpdate<V, S>(update), partitions: partitions))
    }

    /// Spark's `mapWithState(spec)`: the spec's function runs once per record with the key's `State`, and what it
    /// returns is the output; with a timeout, a key without records for longer is called once more with
    /// `state.isTimingOut` and forgotten (docs/operators.md gives the exact rule). State is checkpointed as JSON.
    public func mapWithState<V, S, Mapped>(_ spec: StateSpec<V, S, Mapped>) -> DStream<Mapped> where Element == Pair<V> {
        let batches = spec.timeout.map { context.batches($0, "timeout") } ?? 0
        let function = ClosureMapWithState(spec.function)
        return built(.mapWithState, OperationArguments(stateFunction: function, timeout: batches, partitions: spec.partitions))
    }

    /// For each key of the batch, its values in arrival order (Spark's `groupByKey`).
    public func groupByKey<V: Codable>(partitions: Int? = nil) -> DStream<Pair<[V]>> where Element == Pair<V> {
        grouped(.groupByKey, nil as DStream<Pair<V>>?, partitions) { (values: [V], _: [V]) in [values] }
    }

    /// For each key in both streams, every pair of a value of this stream and one of `other`.
    public func join<V: Codable, W: Codable>(_ other: DStream<Pair<W>>, partitions: Int? = nil) -> DStream<Pair<Joined<V, W>>>
    where Element == Pair<V> {
        grouped(.join, other, partitions) { (left: [V], right: [W]) in left.flatMap { v in right.map { Joined(v, $0) } } }
    }

    /// Every value of this stream, with each matching value of `other`, or nil when the key has none there.
    public func leftOuterJoin<V: Codable, W: Codable>(_ other: DStream<Pair<W>>, partitions: Int? = nil)
        -> DStream<Pair<Joined<V, W?>>> where Element == Pair<V>
    {
        grouped(.leftOuterJoin, other, partitions) { (left: [V], right: [W]) in
            left.flatMap { v in right.isEmpty ? [Joined(v, nil)] : right.map { Joined(v, $0) } }
        }
    }

    /// Every value of `other`, with each matching value of this stream, or nil when the key has none here.
    public func rightOuterJoin<V: Codable, W: Codable>(_ other: DStream<Pair<W>>, partitions: Int? = nil)
        -> DStream<Pair<Joined<V?, W>>> where Element == Pair<V>
    {
        grouped(.rightOuterJoin, other, partitions) { (left: [V], right: [W]) in
            right.flatMap { w in left.isEmpty ? [Joined(nil, w)] : left.map { Joined($0, w) } }
        }
    }

    /// Every key of either stream: each pair of its values, with nil for a side that has none.
    public func fullOuterJoin<V: Codable, W: Codable>(_ other: DStream<Pair<W>>, partitions: Int? = nil)
        -> DStream<Pair<Joined<V?, W?>>> where Element == Pair<V>
    {
        grouped(.fullOuterJoin, other, partitions) { (left: [V], right: [W]) -> [Joined<V?, W?>] in
            if right.isEmpty { return left.map { Joined($0, nil) } }
            if left.isEmpty { return right.map { Joined(nil, $0) } }
            return left.flatMap { v in right.map { Joined(v, $0) } }
        }
    }

    /// For each key of either stream, its values in this stream and in `other`.
    public func cogroup<V: Codable, W: Codable>(_ other: DStream<Pair<W>>, partitions: Int? = nil) -> DStream<Pair<Joined<[V], [W]>>>
    where Element == Pair<V> {
        grouped(.cogroup, other, partitions) { (left: [V], right: [W]) in [Joined(left, right)] }
    }

    /// A grouping operation whose results for a key are what `combine` makes of its values on each side.
    private func grouped<V, W, Out: CodableStreamValue>(
        _ operation: BuiltinOperation,
        _ other: DStream<Pair<W>>?,
        _ partitions: Int?,
        _ combine: @escaping @Sendable ([V], [W]) -> [Out]
    ) -> DStream<Pair<Out>> where Element == Pair<V> {
        let arguments = OperationArguments(groupOutput: TypedGroupOutput<V, W, Out>(combine), partitions: partitions)
        return built(operation, arguments, inputs: [node] + (other.map { [$0.node] } ?? []))
    }
}

// MARK: - Closures in the engine

/// A narrow stage running a Swift closure over each element.
final class ClosureTransform<In: StreamValue, Out: StreamValue>: BatchTransform, DiscardReporting {
    let body: @Sendable (In) -> [Out]
    private let discards = Mutex<(count: Int, reason: String?)>((0, nil))

    init(_ body: @escaping @Sendable (In) -> [Out]) { self.body = body }

    func transform(_ input: OwnedBatch) throws -> OwnedBatch {
        let view = input.view
        var builder = BatchBuilder(valueType: Out.valueType, keyed: Out.keyed, expectedCount: view.count)
        var dropped = 0
        var first: String?
        for i in 0..<view.count {
            guard let element = In.read(view, at: i) else {
                dropped += 1
                if first == nil { first = "record '\(view.displayString(at: i))' is not a \(In.self)" }
                continue
            }
            for output in body(element) { output.append(to: &builder, key: nil) }
        }
        if dropped > 0 {
            discards.withLock { state in
                state.count += dropped
                if state.reason == nil { state.reason = first }
            }
        }
        return OwnedBatch(builder)
    }

    func takeDiscarded() -> (count: Int, reason: String?) {
        discards.withLock { state in
            defer { state = (0, nil) }
            return state
        }
    }
}

/// A sink that decodes each batch and hands it to a closure at commit.
final class ClosureSink<Element: StreamValue>: BatchSink, @unchecked Sendable {  // used from the scheduling thread
    let body: @Sendable (BatchInfo, [Element]) -> Void
    private var pending: [Element] = []

    init(_ body: @escaping @Sendable (BatchInfo, [Element]) -> Void) { self.body = body }

    func begin(_ info: BatchInfo) throws { pending = [] }
    func write(_ chunk: OwnedBatch) throws {
        let view = chunk.view
        for i in 0..<view.count { if let element = Element.read(view, at: i) { pending.append(element) } }
    }
    func commit(_ info: BatchInfo) throws {
        body(info, pending)
        pending = []
    }
}

/// The value types a Swift closure can reduce (stored in 8-byte slots).
public protocol ClosureReducible: StreamValue {
    static var reducerType: ReducerValueType { get }
    init(slot: UInt64)
    var slot: UInt64 { get }
}

extension Int64: ClosureReducible {
    public static var reducerType: ReducerValueType { .int64 }
    public init(slot: UInt64) { self = Int64(bitPattern: slot) }
    public var slot: UInt64 { UInt64(bitPattern: self) }
}

extension Double: ClosureReducible {
    public static var reducerType: ReducerValueType { .double }
    public init(slot: UInt64) { self = Double(bitPattern: slot) }
    public var slot: UInt64 { bitPattern }
}

/// A Swift closure as a keyed operation's reducer.
final class ClosureReducer<V: ClosureReducible>: CustomReducer {
    let f: @Sendable (V, V) -> V
    let inverse: (@Sendable (V, V) -> V)?
    let name: String
    var valueType: ReducerValueType { V.reducerType }
    var hasInverse: Bool { inverse != nil }

    init(_ f: @escaping @Sendable (V, V) -> V, inverse: (@Sendable (V, V) -> V)? = nil) {
        self.f = f
        self.inverse = inverse
        // Closures have no identity to compare: the name says what a closure reduces, and must be the same in every
        // process so that saved state is restored (a program changing its closure must change the stage itself).
        name = "swift-closure-\(V.self)-\(inverse == nil ? "plain" : "inverse")"
    }

    func combine(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) {
        for i in 0..<n { out[i] = f(V(slot: a[i]), V(slot: b[i])).slot }
    }

    func invert(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ out: UnsafeMutablePointer<UInt64>, _ n: Int) throws {
        guard let inverse else { throw ReducerError("this reduceByKeyAndWindow has no inverse function") }
        for i in 0..<n { out[i] = inverse(V(slot: a[i]), V(slot: b[i])).slot }
    }
}
