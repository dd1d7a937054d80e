import Testing

@testable import PantauCore
@testable import PantauGateway

/// The one helper the timeline moves (issue 14) share: optional times at key paths move by `d`; absent ones stay.
@Suite struct TimelineShiftTests {
    @Test("moving shifts every named optional time by d and leaves absent ones absent")
    func movingNamedTimes() {
        let status = FloodAlertStatus(
            level: .siaga4, since: 1_000, value: 12.5, valueAt: nil, stale: false, rateOfRiseActive: false,
            risePerPeriod: nil)
        let moved = moving(status, \.since, \.valueAt, by: -250)
        #expect(moved.since == 750)
        #expect(moved.valueAt == nil)
        #expect(moved.value == 12.5)
        #expect(status.moved(by: 40).since == 1_040)
    }

    @Test("a rain state moves its last reading, interval start and increments together")
    func rainStateMoves() {
        let state = RainAccumulator.State(
            lastCount: 3, lastAt: 10_000, increments: [.init(at: 9_000, millimetres: 0.2)], intervalStart: 8_000,
            intervalMillimetres: 0.2, counterResets: 0, lastCategories: nil)
        let moved = state.moved(by: 60_000)
        #expect(moved.lastAt == 70_000)
        #expect(moved.intervalStart == 68_000)
        #expect(moved.increments.map(\.at) == [69_000])
        #expect(moved.lastCount == 3)
    }
}
