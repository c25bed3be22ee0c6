import SluiceSDK

/// A source of records the engine plans and reads in exact ranges (the direct model).
public protocol BatchSource: AnyObject, Sendable {
    func partitionCount() throws -> Int
    func available(partition: Int) throws -> Range<UInt64>
    func read(partition: Int, offsets: Range<UInt64>) throws -> OwnedBatch
    func commit(partition: Int, upTo offset: UInt64) throws
}

/// A narrow stage: one batch in, one batch out. Must be safe to call from several threads at once.
public protocol BatchTransform: AnyObject, Sendable {
    func transform(_ input: OwnedBatch) throws -> OwnedBatch
}

/// A stage that drops records it cannot use (say, a value that is not a number) and reports how many, once per batch.
public protocol DiscardReporting: AnyObject {
    /// The records dropped since the last call, and the first reason; resets the count.
    func takeDiscarded() -> (count: Int, reason: String?)
}

/// A destination that writes each batch under its id and then commits it.
public protocol BatchSink: AnyObject, Sendable {
    func begin(_ info: BatchInfo) throws
    func write(_ chunk: OwnedBatch) throws
    func commit(_ info: BatchInfo) throws
}

/// The operator graph of a pipeline: what the pipeline file and the Swift API both build.
///
///     source ──▶ transform ──▶ transform ──▶ keyed ──▶ transform ──▶ sink
///        │                        │
///        └──────────▶ sink        └──▶ sink
///
/// Nodes are kept in topological order: a node's inputs come before it.
public struct StreamGraph: Sendable {
    public enum Node: Sendable {
        case source(any BatchSource, maxRecordsPerPartition: Int)
        case transform(any BatchTransform, input: Int)
        /// A built-in operator over all records of a key (or of the stream); `inputs` are unioned.
        case keyed(KeyedStage, inputs: [Int])
        /// A stage that needs the batch's records from every task: window, groupByKey, joins, cogroup, repartition.
        case collecting(any CollectingStage, inputs: [Int])
        /// The records of several streams as one (narrow: no data moves).
        case union(inputs: [Int])
    }

    public struct Sink: Sendable {
        public var name: String
        public var sink: any BatchSink
        public var input: Int
        public init(name: String, sink: any BatchSink, input: Int) {
            self.name = name
            self.sink = sink
            self.input = input
        }
    }

    public private(set) var names: [String] = []
    public private(set) var nodes: [Node] = []
    public private(set) var sinks: [Sink] = []

    public init() {}

    /// Adds a node; its inputs must already be in the graph. Returns its index.
    @discardableResult
    public mutating func add(_ name: String, _ node: Node) -> Int {
        switch node {
        case .source: break
        case .transform(_, let input): precondition(input < nodes.count, "input of '\(name)' added after it")
        case .keyed(_, let inputs), .collecting(_, let inputs), .union(let inputs):
            precondition(inputs.allSatisfy { $0 < nodes.count }, "input of '\(name)' added after it")
        }
        names.append(name)
        nodes.append(node)
        return nodes.count - 1
    }

    public mutating func addSink(_ sink: Sink) {
        precondition(sink.input < nodes.count, "input of sink '\(sink.name)' is not in the graph")
        sinks.append(sink)
    }

    /// The index of the node called `name`.
    public func index(of name: String) -> Int? { names.firstIndex(of: name) }

    /// The source nodes, in graph order.
    public var sourceIndices: [Int] {
        nodes.indices.filter { if case .source = nodes[$0] { true } else { false } }
    }
}
