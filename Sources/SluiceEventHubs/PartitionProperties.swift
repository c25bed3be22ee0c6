import Foundation
import NIOCore
import NIOSSL
import SluiceAMQP
import Synchronization

/// What `$management` says of a partition, as the service reports it.
public struct PartitionProperties: Sendable, Hashable {
    /// -1 when the partition has never held an event.
    public var beginSequenceNumber: Int64
    /// -1 when the partition has never held an event.
    public var lastEnqueuedSequenceNumber: Int64
    /// "-1" when the partition has never held an event.
    public var lastEnqueuedOffset: String
    public var lastEnqueuedTime: Int64
    /// No event is retained: it never held one, or all it held expired.
    public var isEmpty: Bool

    public init(beginSequenceNumber: Int64, lastEnqueuedSequenceNumber: Int64, lastEnqueuedOffset: String, lastEnqueuedTime: Int64, isEmpty: Bool) {
        self.beginSequenceNumber = beginSequenceNumber
        self.lastEnqueuedSequenceNumber = lastEnqueuedSequenceNumber
        self.lastEnqueuedOffset = lastEnqueuedOffset
        self.lastEnqueuedTime = lastEnqueuedTime
        self.isEmpty = isEmpty
    }

    /// The sequence numbers the partition holds now, never negative. The service reports a partition that never held
    /// an event as begin -1 and last -1 (`is_partition_empty`): that is "nothing yet", the empty range at 0, and the
    /// next event is 0. A partition whose events all expired is the empty range after its last event.
    public var retained: Range<Int64> {
        let end = max(lastEnqueuedSequenceNumber, -1) + 1
        let begin = isEmpty || beginSequenceNumber < 0 ? end : min(beginSequenceNumber, end)
        return begin..<end
    }
}
