import SluiceCore
import SluiceLoader
import SluiceSDK

/// A state-updater plugin (ABI 1.3) as the function of a pipeline file's `updateStateByKey`: each key's records of
/// the batch go to the plugin as a batch of values, its state as bytes, and every key that has state after the call
/// is emitted as `(key, state bytes)` — Spark's `updateStateByKey` output, every key every batch.
final class PluginStateFunction: KeyedStateFunction {
    let instance: PluginInstance

    init(_ instance: PluginInstance) { self.instance = instance }

    /// The plugin's name: a snapshot made with another plugin is not restored into this one.
    var name: String { "plugin:\(instance.plugin.name)" }
    var outputType: ValueType { .bytes }
    var outputKeyed: Bool { true }

    func apply(key: UnsafeRawBufferPointer, values: KeyedValues, state: [UInt8]?, timingOut: Bool, output: inout BatchBuilder)
        throws -> StateChange
    {
        let change: StateChange
        switch try instance.updateState(key: key, values: Self.batch(of: values), state: state) {
        case .keep: change = .keep
        case .set(let bytes): change = .set(bytes)
        case .remove: change = .remove
        }
        let kept: [UInt8]?
        switch change {
        case .keep: kept = state
        case .set(let bytes): kept = bytes
        case .remove: kept = nil
        }
        if let kept { kept.withUnsafeBytes { output.append(key: key, value: $0) } }
        return change
    }

    private static let noValues = OwnedBatch(BatchBuilder(valueType: .int64))

    /// The key's records as one batch of values without keys: integers when every record is one (`split`'s pairs),
    /// bytes otherwise (an integer among text values is passed as its decimal text).
    static func batch(of values: KeyedValues) -> OwnedBatch {
        // Most calls of a long-running stage are for idle keys: they share one empty batch instead of making one each.
        if values.isEmpty { return noValues }
        let integers = (0..<values.count).allSatisfy { values[$0].view.valueType == .int64 }
        var builder = BatchBuilder(valueType: integers ? .int64 : .bytes, expectedCount: values.count)
        for n in 0..<values.count {
            let (view, i) = values[n]
            switch (integers, view.valueType) {
            case (true, _): builder.append(view.int64Value(at: i))
            case (false, .bytes): builder.append(view.value(at: i))
            case (false, .int64): builder.append(String(view.int64Value(at: i)))
            }
        }
        return OwnedBatch(builder)
    }
}
