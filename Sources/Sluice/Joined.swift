/// Two values side by side: what a join or `cogroup` of the typed API gives for a key, Spark's `(v, w)` tuple (a Swift
/// tuple cannot be a stream element). `left` comes from the stream the join was called on, `right` from the other;
/// an outer join's missing side is nil, as Spark's `None`.
public struct Joined<Left: Codable & Sendable, Right: Codable & Sendable>: CodableStreamValue {
    public var left: Left
    public var right: Right

    public init(_ left: Left, _ right: Right) {
        self.left = left
        self.right = right
    }

    /// The two values as a tuple, to destructure: `let (clicks, user) = joined.tuple`.
    public var tuple: (Left, Right) { (left, right) }
}

extension Joined: Equatable where Left: Equatable, Right: Equatable {}
extension Joined: Hashable where Left: Hashable, Right: Hashable {}

/// A list of values as a stream element: `groupByKey`'s `[V]`.
extension Array: StreamValue, CodableStreamValue where Element: StreamValue & Codable {}
