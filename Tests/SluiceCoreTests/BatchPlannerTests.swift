import SluiceCore
import Testing

struct BatchPlannerTests {
    let a = PartitionKey(source: 0, partition: 0)
    let b = PartitionKey(source: 0, partition: 1)

    @Test func newPartitionsStartAtTheirEarliestOffset() {
        let plan = BatchPlanner.plan(available: [a: 5..<20, b: 0..<3], positions: [:]) { _ in 100 }
        #expect(plan.ranges.map(\.offsets) == [5..<20, 0..<3])
        #expect(plan.recordCount == 18)
        #expect(plan.endPositions == [a: 20, b: 3])
    }

    @Test func capsRecordsPerPartitionAndResumesFromPositions() {
        let plan = BatchPlanner.plan(available: [a: 0..<1000, b: 0..<10], positions: [a: 400, b: 10]) { _ in 250 }
        #expect(plan.ranges.count == 1, "a partition with nothing new is not planned")
        #expect(plan.ranges[0].key == a)
        #expect(plan.ranges[0].offsets == 400..<650)
    }

    @Test func aPositionBelowWhatIsRetainedStartsAtTheEarliestRetained() {
        let plan = BatchPlanner.plan(available: [a: 50..<60], positions: [a: 10]) { _ in 100 }
        #expect(plan.ranges.map(\.offsets) == [50..<60])
    }

    @Test func tasksCoverEachRangeExactlyOnce() {
        let plan = BatchPlanner.plan(available: [a: 3..<10_003, b: 0..<1], positions: [:]) { _ in 1_000_000 }
        let tasks = plan.tasks(taskSize: 4096)
        #expect(tasks.count == 4)
        #expect(tasks.filter { $0.key == a }.map(\.offsets) == [3..<4099, 4099..<8195, 8195..<10_003])
        #expect(tasks.reduce(0) { $0 + $1.offsets.count } == plan.recordCount)
    }
}
