/// A key of an `op:` stage besides `from` and `op`. Which operation takes which key is declared in the operation table
/// (`BuiltinOperation.all`); the parser reads that declaration, so a key means the same in every operation that takes it.
public enum OperationKey: String, CaseIterable, Sendable {
    case partitions
    case function
    case window
    case slide
    case inverse
    case dropZero = "drop_zero"
    case timeout

    /// What the key's value is, for "missing required key" messages.
    func meaning(in operation: BuiltinOperation) -> String {
        switch self {
        case .partitions: "how many tasks to spread the records over"
        case .function:
            if case .perValue = operation.function { "LIBRARY.FUNCTION from a function library" } else { "the reduce function" }
        case .window: "the window length, a multiple of batch_interval"
        case .slide: "how often the window moves, a multiple of batch_interval"
        case .inverse: "true to subtract what leaves the window"
        case .dropZero: "true to leave out zero values"
        case .timeout: "how long a key may go without records"
        }
    }
}
