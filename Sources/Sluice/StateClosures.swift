import SluiceCore
import SluiceSDK
import Synchronization

/// Counts the records a typed state function could not read as its value type, as `ClosureTransform` does.
final class UnreadRecords: Sendable {
    private let state = Mutex<(count: Int, reason: String?)>((0, nil))

    func note(_ view: BatchView, _ i: Int, as type: Any.Type) {
        state.withLock { state in
            state.count += 1
            if state.reason == nil { state.reason = "record '\(view.displayString(at: i))' is not a \(type)" }
        }
    }

    func take() -> (count: Int, reason: String?) {
        state.withLock { state in
            defer { state = (0, nil) }
            return state
        }
    }
}

/// Reads a key's records as `V`, noting the ones that are not.
func typedValues<V: StreamValue>(_ values: KeyedValues, _ unread: UnreadRecords) -> [V] {
    var typed: [V] = []
    typed.reserveCapacity(values.count)
    for n in 0..<values.count {
        let (view, i) = values[n]
        if let value = V.read(view, at: i) { typed.append(value) } else { unread.note(view, i, as: V.self) }
    }
    return typed
}

/// Spark's `updateStateByKey(f: (Seq[V], Option[S]) => Option[S])` as a state function: state kept as JSON.
final class ClosureStateUpdate<V: StreamValue, S: StreamValue & Codable>: KeyedStateFunction, DiscardReporting {
    let update: @Sendable ([V], S?) -> S?
    private let unread = UnreadRecords()

    init(_ update: @escaping @Sendable ([V], S?) -> S?) { self.update = update }

    // Closures have no identity to compare: the name says what a closure maps, and must be the same in every process
    // so that saved state is restored (a program changing its function must change the stage itself).
    var name: String { "swift-closure-updateStateByKey-\(V.self)-\(S.self)" }
    var outputType: ValueType { S.valueType }
    var outputKeyed: Bool { true }

    func apply(key: UnsafeRawBufferPointer, values: KeyedValues, state: [UInt8]?, timingOut: Bool, output: inout BatchBuilder)
        throws -> StateChange
    {
        let old = try state.map { try StateCoding.decode(S.self, $0) }
        guard let new = update(typedValues(values, unread), old) else { return old == nil ? .keep : .remove }
        new.append(to: &output, key: key)
        return .set(try StateCoding.encode(new))
    }

    func takeDiscarded() -> (count: Int, reason: String?) { unread.take() }
}

/// Spark's `mapWithState(StateSpec.function(f))` as a state function: the function runs once per record with a
/// `State` it may update or remove, and once with no value for a key that times out.
final class ClosureMapWithState<V: StreamValue, S: Codable & Sendable, Mapped: StreamValue>: KeyedStateFunction, DiscardReporting {
    let function: @Sendable (String, V?, State<S>) -> Mapped
    private let unread = UnreadRecords()

    init(_ function: @escaping @Sendable (String, V?, State<S>) -> Mapped) { self.function = function }

    var name: String { "swift-closure-mapWithState-\(V.self)-\(S.self)-\(Mapped.self)" }
    var outputType: ValueType { Mapped.valueType }
    var outputKeyed: Bool { Mapped.keyed }

    func apply(key: UnsafeRawBufferPointer, values: KeyedValues, state: [UInt8]?, timingOut: Bool, output: inout BatchBuilder)
        throws -> StateChange
    {
        let text = String(decoding: key, as: UTF8.self)
        let current = State<S>(try state.map { try StateCoding.decode(S.self, $0) }, isTimingOut: timingOut)
        if timingOut {
            function(text, nil, current).append(to: &output, key: nil)
            return .keep
        }
        for value in typedValues(values, unread) as [V] {
            function(text, value, current).append(to: &output, key: nil)
        }
        if current.wasRemoved { return .remove }
        if current.wasUpdated, let new = current.getOption() { return .set(try StateCoding.encode(new)) }
        return .keep
    }

    func takeDiscarded() -> (count: Int, reason: String?) { unread.take() }
}
