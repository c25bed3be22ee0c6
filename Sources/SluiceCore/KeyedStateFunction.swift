import SluiceSDK

/// A function over one key's state, supplied from outside the engine — a Swift closure of the typed API, or an
/// update-state plugin (ABI 1.3) — for Spark's general `updateStateByKey` and `mapWithState`. The state is bytes the
/// function encodes itself (a `Codable` value, a C struct), so the engine can checkpoint it like its own.
public protocol KeyedStateFunction: AnyObject, Sendable {
    /// What made the state (a plugin's name, a closure's description): part of the stage's fingerprint, so a
    /// snapshot is not handed to a different function.
    var name: String { get }
    /// The records the function writes: their value type, and whether they have keys.
    var outputType: ValueType { get }
    var outputKeyed: Bool { get }
    /// Called for one key of one batch. `values` are the key's records of the batch in arrival order — none for a
    /// key that has state but no records (`updateStateByKey` calls every key with state, as Spark does) or that is
    /// timing out (`timingOut`; its state is removed whatever the function answers). The function writes what it
    /// emits into `output` and says what becomes of the state.
    func apply(
        key: UnsafeRawBufferPointer,
        values: KeyedValues,
        state: [UInt8]?,
        timingOut: Bool,
        output: inout BatchBuilder
    ) throws -> StateChange
}

/// What a state function does to its key's state.
public enum StateChange: Sendable, Equatable {
    /// The state stays as it was (or absent).
    case keep
    /// The state becomes these bytes.
    case set([UInt8])
    /// The key's state is removed.
    case remove
}

/// The records of one key in one batch, as positions in the batch's chunks (valid during the call only).
public struct KeyedValues {
    let chunks: [BatchView]
    let refs: ArraySlice<(chunk: Int32, index: Int32)>

    public var count: Int { refs.count }
    public var isEmpty: Bool { refs.isEmpty }

    /// The `n`th record: the chunk's view and its index in it.
    public subscript(n: Int) -> (view: BatchView, index: Int) {
        let ref = refs[refs.startIndex + n]
        return (chunks[Int(ref.chunk)], Int(ref.index))
    }

    static var none: KeyedValues { KeyedValues(chunks: [], refs: []) }
}
