import Foundation
import NIOCore
import NIOSSL
import SluiceAMQP
import Synchronization

/// Where a receiver starts reading a partition.
public enum EventPosition: Hashable, Sendable {
    case earliest
    case latest
    /// From this sequence number (inclusive).
    case sequenceNumber(Int64)
    /// After this enqueued time (milliseconds since the epoch).
    case enqueuedTime(Int64)
    /// After (or, inclusive, at) this offset, as Event Hubs reports offsets.
    case offset(String, inclusive: Bool)

    var selector: String {
        switch self {
        case .earliest: "amqp.annotation.x-opt-offset > '-1'"
        case .latest: "amqp.annotation.x-opt-offset > '@latest'"
        case .sequenceNumber(let n): "amqp.annotation.x-opt-sequence-number >= '\(n)'"
        case .enqueuedTime(let t): "amqp.annotation.x-opt-enqueued-time > '\(t)'"
        case .offset(let offset, let inclusive): "amqp.annotation.x-opt-offset \(inclusive ? ">=" : ">") '\(offset)'"
        }
    }
}
