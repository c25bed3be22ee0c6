import SluiceCore
import SluiceSDK
import Synchronization

/// `map` and `filter` with a library function: the batch's values are read as numbers of the function's argument
/// type, passed to the function (once per batch for batch signatures), and the results written back with each
/// record's key and timestamp. A value that is not a number of that type is dropped, counted and reported.
public final class FunctionTransform: BatchTransform, DiscardReporting {
    public let function: NativeFunction
    private let discards = Mutex<(count: Int, reason: String?)>((0, nil))

    public init(_ function: NativeFunction) {
        precondition(function.shape.kind != .reduce, "a reduce function is not a transform")
        self.function = function
    }

    public func takeDiscarded() -> (count: Int, reason: String?) {
        discards.withLock { state in
            defer { state = (0, nil) }
            return state
        }
    }

    public func transform(_ input: OwnedBatch) throws -> OwnedBatch {
        let view = input.view
        let n = view.count
        // The values as 8-byte slots of the argument type, and which records had one.
        var slots = [UInt64](repeating: 0, count: n)
        var usable = [Int]()
        usable.reserveCapacity(n)
        var firstBad: Int?
        for i in 0..<n {
            switch function.shape.argument {
            case .int64:
                if let v = view.integer(at: i) { slots[usable.count] = UInt64(bitPattern: v); usable.append(i) } else { firstBad = firstBad ?? i }
            case .double:
                if let v = view.number(at: i) { slots[usable.count] = v.bitPattern; usable.append(i) } else { firstBad = firstBad ?? i }
            }
        }
        if let firstBad {
            let wanted = function.shape.argument == .int64 ? "an integer" : "a number"
            discards.withLock { state in
                state.count += n - usable.count
                if state.reason == nil { state.reason = "\(function.name): value '\(view.valueString(at: firstBad))' is not \(wanted)" }
            }
        }
        let count = usable.count
        switch function.shape.kind {
        case .filter:
            var keep = [UInt8](repeating: 0, count: count)
            slots.withUnsafeBufferPointer { input in
                keep.withUnsafeMutableBufferPointer { function.filter(input.baseAddress!, $0.baseAddress!, count) }
            }
            var builder = BatchBuilder(valueType: view.valueType, keyed: view.hasKeys, timestamps: view.hasTimestamps, expectedCount: count)
            for (j, i) in usable.enumerated() where keep[j] != 0 { copyRecords(view, i..<(i + 1), into: &builder) }
            return OwnedBatch(builder)
        case .map:
            var results = [UInt64](repeating: 0, count: count)
            slots.withUnsafeBufferPointer { input in
                results.withUnsafeMutableBufferPointer { function.map(input.baseAddress!, $0.baseAddress!, count) }
            }
            guard case .map(_, let resultType) = function.shape.unbatched else { preconditionFailure() }
            var builder = BatchBuilder(
                valueType: resultType == .int64 ? .int64 : .bytes,
                keyed: view.hasKeys,
                timestamps: view.hasTimestamps,
                expectedCount: count
            )
            for (j, i) in usable.enumerated() {
                let key = view.hasKeys ? view.key(at: i) : nil
                if resultType == .int64 {
                    let value = Int64(bitPattern: results[j])
                    if let key { builder.append(key: key, value: value) } else { builder.append(value) }
                } else {
                    var text = String(Double(bitPattern: results[j]))
                    text.withUTF8 { utf8 in
                        let bytes = UnsafeRawBufferPointer(utf8)
                        if let key { builder.append(key: key, value: bytes) } else { builder.append(bytes) }
                    }
                }
                if let t = view.timestamp(at: i) { builder.setLastTimestamp(t) }
            }
            return OwnedBatch(builder)
        case .reduce:
            preconditionFailure("a reduce function is not a transform")
        }
    }
}

extension FunctionShape {
    /// The same function seen one value at a time (a batch shape's scalar equivalent).
    var unbatched: FunctionShape {
        switch self {
        case .mapBatch(let a, let r): .map(argument: a, result: r)
        case .filterBatch(let a): .filter(argument: a)
        case .reduceBatch(let t): .reduce(t)
        default: self
        }
    }
}
