/// A key's state inside a `mapWithState` function, Spark's `State[S]`: read it, update it, remove it; on the call for a
/// key that timed out, `isTimingOut` is true and the state can only be read (it is removed afterwards).
public final class State<S: Codable & Sendable> {
    private var current: S?
    public let isTimingOut: Bool
    private(set) var wasUpdated = false
    private(set) var wasRemoved = false

    init(_ current: S?, isTimingOut: Bool) {
        self.current = current
        self.isTimingOut = isTimingOut
    }

    /// Whether the key has state.
    public var exists: Bool { current != nil }

    /// The state; the key must have one (`exists`), as Spark's `get()` requires.
    public func get() -> S {
        guard let current else { preconditionFailure("State.get() on a key without state; check exists or use getOption()") }
        return current
    }

    /// The state, or nil.
    public func getOption() -> S? { current }

    /// Replaces the state. Not allowed while timing out (Spark throws there too).
    public func update(_ newState: S) {
        precondition(!isTimingOut, "State.update() on a key that is timing out; its state is removed after this call")
        current = newState
        wasUpdated = true
        wasRemoved = false
    }

    /// Removes the key's state.
    public func remove() {
        precondition(!isTimingOut, "State.remove() on a key that is timing out; its state is removed after this call")
        current = nil
        wasRemoved = true
        wasUpdated = false
    }
}

/// What `mapWithState` runs, Spark's `StateSpec`: a function of (key, value, state) and, optionally, a timeout
/// and a number of partitions.
///
/// ```swift
/// let spec = StateSpec.function { (user: String, click: Int64?, state: State<Session>) -> Pair<Int64> in ... }
///     .timeout(.seconds(30))
/// ```
public struct StateSpec<Value: StreamValue, S: Codable & Sendable, Mapped: StreamValue>: Sendable {
    let function: @Sendable (String, Value?, State<S>) -> Mapped
    var timeout: Duration?
    var partitions: Int?

    /// Called once per record with its key, its value and the key's state, and once with no value for a key that
    /// times out (`state.isTimingOut`); what it returns is the operation's output.
    public static func function(_ function: @escaping @Sendable (String, Value?, State<S>) -> Mapped) -> StateSpec {
        StateSpec(function: function)
    }

    /// A key that gets no records for longer than `duration` (a multiple of the batch interval) is called once with
    /// `isTimingOut` and forgotten.
    public func timeout(_ duration: Duration) -> StateSpec {
        var spec = self
        spec.timeout = duration
        return spec
    }

    /// How many tasks keep the state (the context's parallelism by default).
    public func numPartitions(_ partitions: Int) -> StateSpec {
        var spec = self
        spec.partitions = partitions
        return spec
    }
}
