import SluiceCore
import SluiceSDK

/// `groupByKey`, the joins and `cogroup` of the typed API: a key's values read as `V` (this stream) and `W` (the
/// other), combined by `combine` into typed results written as JSON records under the key.
final class TypedGroupOutput<V: StreamValue, W: StreamValue, Out: CodableStreamValue>: GroupOutput, DiscardReporting {
    let combine: @Sendable ([V], [W]) -> [Out]
    private let unread = UnreadRecords()

    init(_ combine: @escaping @Sendable ([V], [W]) -> [Out]) { self.combine = combine }

    func write(_ kind: GroupStage.Kind, key: UnsafeRawBufferPointer, sides: [KeyedValues], into builder: inout BatchBuilder) {
        let left: [V] = typedValues(sides[0], unread)
        let right: [W] = sides.count > 1 ? typedValues(sides[1], unread) : []
        for result in combine(left, right) { result.append(to: &builder, key: key) }
    }

    func takeDiscarded() -> (count: Int, reason: String?) { unread.take() }
}
