@testable import EventHubsEmulator
import Testing

/// The emulator's record of unsettled delivery ids, runs of consecutive ids, against a set of the same ids.
@Suite(.timeLimit(.minutes(1)))
struct UnsettledDeliveriesTests {
    @Test(arguments: [0 as UInt32, UInt32.max - 300])
    func agreesWithASetOfIds(start: UInt32) {
        var generator = Congruential(seed: UInt64(start) + 7)
        var runs = UnsettledDeliveries()
        var model = Set<UInt32>()
        var next = start
        for step in 0..<2_000 {
            if generator.next() % 3 != 0 {
                // Send a few deliveries.
                for _ in 0..<(generator.next() % 5) {
                    runs.insert(next)
                    model.insert(next)
                    next &+= 1
                }
            } else {
                // Settle a range near the recent ids: single ids, runs, ranges over settled ids, wrapping ranges.
                let first = next &- UInt32(generator.next() % 40)
                let last = first &+ UInt32(generator.next() % 12)
                var expected = 0
                var id = first
                while true {
                    if model.remove(id) != nil { expected += 1 }
                    if id == last { break }
                    id &+= 1
                }
                #expect(runs.remove(first, through: last) == expected, "step \(step): \(first)...\(last)")
            }
            #expect(runs.count == model.count, "step \(step)")
        }
        // The runs stay few: ids are sent in order and settled in ranges.
        #expect(runs.runs.count <= model.count)
        #expect(runs.runs.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound) + 1 } == model.count)
    }
}

/// A linear congruential generator (Knuth's MMIX constants), so that a failure repeats.
struct Congruential {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 29
    }
}
