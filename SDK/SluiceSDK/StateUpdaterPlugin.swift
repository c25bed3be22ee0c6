import CSluice
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a state updater does to one key's state.
public enum StateUpdate: Sendable, Equatable {
    /// The state stays as it was (a key without state stays without).
    case keep
    /// The state becomes these bytes (empty bytes are a state, not none).
    case set([UInt8])
    /// The key's state is dropped.
    case remove
}

/// A state updater (ABI 1.3): Spark's `updateStateByKey` function for pipeline files (`{op: updateStateByKey,
/// function: NAME}`). For every key with records or state, once per batch, it gets the key's records of the batch
/// and its previous state, and says what the state becomes; the host emits `(key, state)` for every key that has
/// state after the batch.
///
/// Implementation requirements: the state is the host's — it checkpoints the bytes and hands them back after a
/// restart — so `update` must depend on `key`, `values` and `state` only (a replayed batch must give the same
/// state), never on what the instance remembers. `values` is empty for a key that has state but no records this
/// batch: that is how a function ages or drops idle keys. `values` has no keys; its value type is whatever the
/// stream carries (`.int64` for `split`'s pairs). If ``PluginInfo/concurrent`` is true, `update` may be called from
/// several threads at once (for different keys).
public protocol StateUpdaterPlugin: Plugin {
    /// - Parameters:
    ///   - key: the key's bytes, valid during the call.
    ///   - values: the key's records of this batch in arrival order, valid during the call.
    ///   - state: the key's previous state, nil for a new key; valid during the call.
    func update(key: UnsafeRawBufferPointer, values: BatchView, state: UnsafeRawBufferPointer?) throws -> StateUpdate
}

/// A state updater's function behind the ABI, with the bytes of its last answers: the ABI lets the host read them
/// until the plugin's next call on the instance from the same thread, so one buffer is kept per calling thread.
final class StateUpdaterCalls {
    let update: (UnsafeRawBufferPointer, BatchView, UnsafeRawBufferPointer?) throws -> StateUpdate
    /// malloc'd copies of the last answer, by thread (the addresses as integers, to keep the table Sendable).
    private let answers = Mutex<[UInt: UInt]>([:])

    init<T: StateUpdaterPlugin>(_ plugin: T) {
        update = { try plugin.update(key: $0, values: $1, state: $2) }
    }

    /// Copies `bytes` as this thread's answer, freeing its previous one, and returns where the copy is.
    func keep(_ bytes: [UInt8]) -> UnsafePointer<UInt8> {
        let copy = malloc(max(bytes.count, 1))!
        bytes.withUnsafeBytes { if let base = $0.baseAddress { copy.copyMemory(from: base, byteCount: $0.count) } }
        let thread = UInt(pthread_self())
        let previous = answers.withLock { $0.updateValue(UInt(bitPattern: copy), forKey: thread) }
        free(previous.flatMap { UnsafeMutableRawPointer(bitPattern: $0) })
        return UnsafePointer(copy.assumingMemoryBound(to: UInt8.self))
    }

    deinit {
        answers.withLock { for address in $0.values { free(UnsafeMutableRawPointer(bitPattern: address)) } }
    }
}

extension PluginExport {
    /// The descriptor of a state-updater plugin (ABI 1.3), or nil when the host's ABI major differs from the SDK's
    /// or the host is older than 1.3 (it would not know the kind; refusing gives it a clear message).
    public static func descriptor<T: StateUpdaterPlugin>(for type: T.Type, hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
        guard hostABI >> 16 == SLUICE_ABI_MAJOR, hostABI & 0xFFFF >= 3 else { return nil }
        return descriptor(T.self, kind: SLUICE_KIND_STATE_UPDATER, hostABI: hostABI) { host, json in
            try instance(T.self, host, json) { plugin in InstanceBox(stateUpdater: StateUpdaterCalls(plugin)) }
        }
    }
}

func stateUpdate(
    _ instance: UnsafeMutableRawPointer?,
    _ update: UnsafePointer<sluice_state_update>?,
    _ result: UnsafeMutablePointer<sluice_state_result>?
) -> Int32 {
    withInstance(instance) { box in
        guard let calls = box.stateUpdater, let update, let result, let values = update.pointee.values else {
            return SLUICE_ERR
        }
        let call = update.pointee
        let key = UnsafeRawBufferPointer(start: call.key, count: Int(call.key_len))
        let state = call.flags & SLUICE_STATE_PRESENT != 0
            ? UnsafeRawBufferPointer(start: call.state, count: Int(call.state_len)) : nil
        do {
            switch try calls.update(key, BatchView(values), state) {
            case .keep:
                result.pointee.action = SLUICE_STATE_KEEP
            case .remove:
                result.pointee.action = SLUICE_STATE_REMOVE
            case .set(let bytes):
                result.pointee.action = SLUICE_STATE_SET
                result.pointee.state = calls.keep(bytes)
                result.pointee.state_len = UInt64(bytes.count)
            }
            return SLUICE_OK
        } catch {
            box.setError(error)
            return SLUICE_ERR
        }
    }
}
