import Foundation
import NIOCore
import NIOSSL
import SluiceAMQP
import Synchronization

/// An event as read from a partition.
public struct EventHubsEvent: Sendable, Hashable {
    public var sequenceNumber: Int64
    /// Opaque; Event Hubs gives a string.
    public var offset: String
    /// Milliseconds since the epoch.
    public var enqueuedTime: Int64
    public var partitionKey: String?
    public var body: [UInt8]
    /// The application properties the producer set.
    public var properties: AMQPMap?
    public var messageProperties: AMQPMessageProperties?
    /// With runtime metrics: the partition's last enqueued sequence number when the event was sent.
    public var lastEnqueuedSequenceNumber: Int64? = nil
}
