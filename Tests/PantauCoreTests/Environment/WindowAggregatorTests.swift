import Foundation
import Testing

@testable import PantauCore

@Suite("Environment windows")
struct EnvironmentWindowTests {
    static func aggregator(poll: Interval = .seconds(10), grace: Interval = .seconds(5)) -> WindowAggregator {
        WindowAggregator(windows: [.minutes(1), .minutes(15), .minutes(60)], grace: grace) { _ in poll }
    }

    @Test("windows align to wall-clock boundaries")
    func alignment() {
        var agg = Self.aggregator()
        // 10:07:30 UTC.
        let t = envMidnight + 10 * envHour + 7 * envMinute + 30_000
        #expect(agg.ingest(envReading(1, at: t)).isEmpty)
        let closed = agg.advance(to: envMidnight + 11 * envHour + 5_000)
        #expect(closed.map(\.window) == [.minutes(1), .minutes(15), .minutes(60)])
        #expect(closed.map(\.start) == [t - 30_000, envMidnight + 10 * envHour, envMidnight + 10 * envHour])
        #expect(
            closed.map(\.end) == [t + 30_000, envMidnight + 10 * envHour + 15 * envMinute, envMidnight + 11 * envHour])
        #expect(WindowAggregator.alignedStart(-1, 60_000) == -60_000)
    }

    @Test("statistics: population standard deviation, first and last by acquisition time")
    func statistics() {
        var agg = Self.aggregator(poll: .seconds(5))
        // The classic set 2 4 4 4 5 5 7 9: mean 5, population sd 2 (sample sd would be 2.138).
        let values: [Double] = [2, 4, 4, 4, 5, 5, 7, 9]
        // Delivered out of order: the 9 (acquired last) arrives first.
        let order = [7, 0, 1, 2, 3, 4, 5, 6]
        for i in order { _ = agg.ingest(envReading(values[i], at: envMidnight + Int64(i) * 5_000)) }
        _ = agg.ingest(envReading(nil, at: envMidnight + 50_000))
        _ = agg.ingest(envReading(1000, at: envMidnight + 51_000, quality: .outOfRange))
        let r = agg.advance(to: envMidnight + envMinute + 5_000).first { $0.window == .minutes(1) }!
        #expect(r.statistics.count == 8)
        #expect(r.statistics.min == 2 && r.statistics.max == 9)
        #expect(envApproximately(r.statistics.mean, 5))
        #expect(envApproximately(r.statistics.standardDeviation, 2))
        #expect(r.statistics.first == 2 && r.statistics.firstAt == envMidnight)
        #expect(r.statistics.last == 9 && r.statistics.lastAt == envMidnight + 35_000)
        // 60 s / 5 s = 12 expected, 8 arrived.
        #expect(r.expected == 12)
        #expect(envApproximately(r.coverage, 8.0 / 12))
    }

    @Test("coverage per device poll interval, capped at 1")
    func coverage() {
        var agg = WindowAggregator(windows: [.minutes(1)]) { device in device == "fast" ? .seconds(10) : .seconds(30) }
        for k in 0..<7 { _ = agg.ingest(envReading(1, at: envMidnight + Int64(k) * 9_000, device: "fast")) }
        for k in 0..<1 { _ = agg.ingest(envReading(1, at: envMidnight + Int64(k) * 30_000, device: "slow")) }
        let closed = agg.advance(to: envMidnight + 2 * envMinute)
        #expect(closed.first { $0.device == "fast" }?.coverage == 1)
        #expect(closed.first { $0.device == "slow" }?.coverage == 0.5)
    }

    @Test("a window is emitted only after its end plus grace")
    func grace() {
        var agg = WindowAggregator(windows: [.minutes(1)], grace: .seconds(5)) { _ in .seconds(10) }
        _ = agg.ingest(envReading(1, at: envMidnight + 10_000))
        #expect(agg.advance(to: envMidnight + envMinute + 4_999).isEmpty)
        // A reading for the ended window within grace still counts.
        #expect(agg.ingest(envReading(3, at: envMidnight + 59_000)).isEmpty)
        let closed = agg.advance(to: envMidnight + envMinute + 5_000)
        #expect(closed.count == 1)
        #expect(closed[0].statistics.count == 2)
        #expect(closed[0].statistics.mean == 2)
    }

    @Test("late readings are dropped, counted, and reported with the next result")
    func late() throws {
        var agg = WindowAggregator(windows: [.minutes(1), .minutes(15)], grace: .seconds(5)) { _ in .seconds(10) }
        _ = agg.ingest(envReading(1, at: envMidnight + 10_000))
        // A reading at 00:01:06 moves time past 00:01:05: the first minute closes.
        let closedByIngest = agg.ingest(envReading(2, at: envMidnight + 66_000))
        #expect(closedByIngest.map(\.window) == [.minutes(1)])
        // A reading for 00:00:50 is now late for the 1 min window, but fine for the 15 min window.
        _ = agg.ingest(envReading(100, at: envMidnight + 50_000))
        #expect(agg.lateReadings == 1)
        // The late counters are part of the persisted state.
        let saved = agg.snapshot()
        #expect(try JSONDecoder().decode(WindowAggregator.State.self, from: JSONEncoder().encode(saved)) == saved)
        let closed = agg.advance(to: envMidnight + 15 * envMinute + 5_000)
        let minute = closed.first { $0.window == .minutes(1) }!
        #expect(minute.statistics.count == 1)
        #expect(minute.statistics.mean == 2)
        #expect(minute.lateDropped == 1)
        let quarter = closed.first { $0.window == .minutes(15) }!
        #expect(quarter.statistics.count == 3)
        #expect(quarter.lateDropped == 0)
    }

    @Test("state survives a restart: the hour's mean spans both processes")
    func restore() throws {
        var before = Self.aggregator(poll: .minutes(1))
        for k in 0..<30 { _ = before.ingest(envReading(10, at: envMidnight + Int64(k) * envMinute)) }
        let saved = try JSONEncoder().encode(before.snapshot())

        var after = Self.aggregator(poll: .minutes(1))
        after.restore(try JSONDecoder().decode(WindowAggregator.State.self, from: saved))
        for k in 30..<60 { _ = after.ingest(envReading(20, at: envMidnight + Int64(k) * envMinute)) }
        let hour = after.advance(to: envMidnight + envHour + 5_000).first { $0.window == .minutes(60) }!
        #expect(hour.statistics.count == 60)
        #expect(envApproximately(hour.statistics.mean, 15))
        #expect(hour.coverage == 1)
        #expect(hour.statistics.first == 10 && hour.statistics.last == 20)
    }

    @Test("restore drops windows of lengths no longer configured")
    func restoreOtherLengths() {
        var before = Self.aggregator()
        _ = before.ingest(envReading(1, at: envMidnight))
        var after = WindowAggregator(windows: [.minutes(60)]) { _ in .seconds(10) }
        after.restore(before.snapshot())
        #expect(after.advance(to: envMidnight + 2 * envHour).map(\.window) == [.minutes(60)])
    }

    /// Issue 19.12: a flood level polls faster than configured; the expected count follows the interval in force.
    @Test("coverage integrates the poll interval in force over the window (flood polling, then an outage)")
    func coverageFollowsTheIntervalInForce() throws {
        var agg = Self.aggregator(poll: .seconds(10))
        let hour = envMidnight + 10 * envHour
        // 10:00-10:05 at the configured 10 s (30 samples), then Siaga 2 polls every second from 10:05;
        // the device answers until 10:08 (180 samples), then nothing until 10:15.
        for k in 0..<30 { _ = agg.ingest(envReading(1, at: hour + Int64(k) * 10_000)) }
        agg.pollIntervalChanged(device: "dev-1", to: .seconds(1), at: hour + 5 * envMinute)
        for k in 0..<180 { _ = agg.ingest(envReading(1, at: hour + 5 * envMinute + Int64(k) * 1000)) }
        // Back to the configured interval at 10:30, inside the next window.
        agg.pollIntervalChanged(device: "dev-1", to: .seconds(10), at: hour + 30 * envMinute)
        var results = agg.ingest(envReading(1, at: hour + 20 * envMinute))
        results += agg.advance(to: hour + 45 * envMinute + 5_000)
        let closed = results.filter { $0.window == .minutes(15) }
        try #require(closed.count == 2)
        // Expected: 5 min at 10 s (30) + 10 min at 1 s (600) = 630; 210 arrived.
        #expect(envApproximately(closed[0].expected, 630))
        #expect(envApproximately(closed[0].coverage, 210.0 / 630))
        // 10:15-10:30 at 1 s (900) and 10:30-10:45 are two windows; the first of them holds one sample.
        #expect(envApproximately(closed[1].expected, 900))
        // Windows after the change back expect the configured rate again, also after a save and restore.
        let data = try JSONEncoder().encode(agg.snapshot())
        var again = Self.aggregator(poll: .seconds(10))
        again.restore(try JSONDecoder().decode(WindowAggregator.State.self, from: data))
        _ = again.ingest(envReading(1, at: hour + 50 * envMinute))
        let later = again.advance(to: hour + 60 * envMinute + 5_000)
        #expect(later.first { $0.window == .minutes(15) }.map { envApproximately($0.expected, 90) } == true)
        // The hour window spans all three: 30 (10 s) + 600 (1 s) + 900 (1 s) + 180 (10:30-11:00 at 10 s).
        #expect(later.first { $0.window == .minutes(60) }.map { envApproximately($0.expected, 1710) } == true)
    }
}
