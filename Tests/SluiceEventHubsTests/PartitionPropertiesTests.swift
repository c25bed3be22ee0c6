import SluiceEventHubs
import Testing

/// What the service reports of a partition, turned into the sequence numbers it holds: never negative, whatever
/// the partition's history.
@Suite(.timeLimit(.minutes(1)))
struct PartitionPropertiesTests {
    static func properties(begin: Int64, last: Int64, empty: Bool) -> PartitionProperties {
        PartitionProperties(beginSequenceNumber: begin, lastEnqueuedSequenceNumber: last, lastEnqueuedOffset: last < 0 ? "-1" : "\(last * 10)", lastEnqueuedTime: 0, isEmpty: empty)
    }

    @Test func aPartitionThatNeverHeldAnEventHoldsNothingAndContinuesAtZero() {
        #expect(Self.properties(begin: -1, last: -1, empty: true).retained == 0..<0)
        // Either sign of emptiness is enough.
        #expect(Self.properties(begin: -1, last: -1, empty: false).retained == 0..<0)
        #expect(Self.properties(begin: 0, last: -1, empty: true).retained == 0..<0)
    }

    @Test func aPartitionWithEventsHoldsThem() {
        #expect(Self.properties(begin: 0, last: 9, empty: false).retained == 0..<10)
        #expect(Self.properties(begin: 5, last: 9, empty: false).retained == 5..<10)
    }

    @Test func aPartitionWhoseEventsExpiredHoldsNothingAfterItsLastEvent() {
        #expect(Self.properties(begin: 10, last: 9, empty: true).retained == 10..<10)
        #expect(Self.properties(begin: -1, last: 9, empty: true).retained == 10..<10)
        #expect(Self.properties(begin: 3, last: 9, empty: true).retained == 10..<10)
    }
}
