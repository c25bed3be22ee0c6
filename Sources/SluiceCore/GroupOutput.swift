import SluiceSDK

/// How `GroupStage` writes one key's result from the key's records on each side: Spark's text for pipeline files
/// (`SparkTextGroupOutput`), typed values for the Swift API. If it is also `DiscardReporting`, the records it could
/// not read are counted with the stage's.
public protocol GroupOutput: Sendable {
    /// Writes the output records of `key` for `kind`; `sides` has one entry per input (one for groupByKey, two
    /// otherwise), each the key's records from that input in arrival order.
    func write(_ kind: GroupStage.Kind, key: UnsafeRawBufferPointer, sides: [KeyedValues], into builder: inout BatchBuilder)
}

/// Values as Spark prints them: a join's value is `(v,w)`, an outer join's missing side `None` and its present side
/// `Some(x)`, a group `[v1,v2]`, a cogroup `([v1,v2],[w1])`.
public struct SparkTextGroupOutput: GroupOutput {
    public init() {}

    public func write(_ kind: GroupStage.Kind, key: UnsafeRawBufferPointer, sides: [KeyedValues], into builder: inout BatchBuilder) {
        for value in values(kind, sides) {
            var value = value
            value.withUTF8 { builder.append(key: key, value: UnsafeRawBufferPointer($0)) }
        }
    }

    private func values(_ kind: GroupStage.Kind, _ sides: [KeyedValues]) -> [String] {
        func texts(_ values: KeyedValues) -> [String] { (0..<values.count).map { values[$0].view.valueString(at: values[$0].index) } }
        func list(_ values: [String]) -> String { "[" + values.joined(separator: ",") + "]" }
        let left = texts(sides[0])
        let right = sides.count > 1 ? texts(sides[1]) : []
        switch kind {
        case .groupByKey:
            return [list(left)]
        case .cogroup:
            return ["(\(list(left)),\(list(right)))"]
        case .join:
            return left.flatMap { v in right.map { w in "(\(v),\(w))" } }
        case .leftOuterJoin:
            return left.flatMap { v in right.isEmpty ? ["(\(v),None)"] : right.map { w in "(\(v),Some(\(w)))" } }
        case .rightOuterJoin:
            return right.flatMap { w in left.isEmpty ? ["(None,\(w))"] : left.map { v in "(Some(\(v)),\(w))" } }
        case .fullOuterJoin:
            if right.isEmpty { return left.map { v in "(Some(\(v)),None)" } }
            if left.isEmpty { return right.map { w in "(None,Some(\(w)))" } }
            return left.flatMap { v in right.map { w in "(Some(\(v)),Some(\(w)))" } }
        }
    }
}
