import PantauCore
import Testing

@testable import PantauModbus

@Suite struct SimulatedSignalTests {
    let start: UnixMillis = 1_700_000_000_000
    /// One sample every 10 minutes over a whole day.
    var day: [UnixMillis] { (0..<144).map { start + Int64($0) * 600_000 } }

    struct Case: Sendable, CustomTestStringConvertible {
        let quantity: String
        let unit: String
        let range: ClosedRange<Double>
        var testDescription: String { "\(quantity) [\(unit)]" }
    }

    @Test(arguments: [
        Case(quantity: "pm2_5", unit: "ug/m3", range: 12...83),
        Case(quantity: "pm10", unit: "ug/m3", range: 19...133),
        Case(quantity: "temperature", unit: "Cel", range: 25.8...33.2),
        Case(quantity: "relative_humidity", unit: "%RH", range: 59...91),
        Case(quantity: "no2", unit: "ppb", range: 8...62),
        Case(quantity: "co", unit: "ppm", range: 0.2...2.1),
        Case(quantity: "o3", unit: "ug/m3", range: 15...165),
        Case(quantity: "pressure", unit: "hPa", range: 1008...1012),
    ])
    func dailySignalsStayInPlausibleRangesAndActuallyVary(_ c: Case) {
        let point = PointSpec(
            name: c.quantity, quantity: c.quantity, table: .holding, address: 0, type: .f32, unit: c.unit)
        let signal = SimulatedSignal.plausible(for: point, start: start, riverLevelMeters: 1.5)
        let values = day.map(signal.value)
        #expect(values.allSatisfy { c.range.contains($0) })
        let spread = values.max()! - values.min()!
        #expect(spread > (c.range.upperBound - c.range.lowerBound) * 0.5)
    }

    @Test func pm10FollowsPm25AtOnePointSixTimes() {
        let pm25 = SimulatedSignal.plausible(
            for: PointSpec(name: "a", quantity: "pm2_5", table: .holding, address: 0, type: .u16, unit: "ug/m3"),
            start: start, riverLevelMeters: 0)
        let pm10 = SimulatedSignal.plausible(
            for: PointSpec(name: "b", quantity: "pm10", table: .holding, address: 1, type: .u16, unit: "ug/m3"),
            start: start, riverLevelMeters: 0)
        for time in day { #expect(abs(pm10.value(time) - 1.6 * pm25.value(time)) < 1e-9) }
    }

    @Test(arguments: [("m", 1.0), ("cm", 100.0), ("mm", 1000.0)])
    func riverRisesFromItsStartLevelInThePointsUnit(unit: String, factor: Double) {
        let point = PointSpec(
            name: "level", quantity: "water_level", table: .holding, address: 0, type: .u16, unit: unit)
        let signal = SimulatedSignal.plausible(for: point, start: start, riverLevelMeters: 2)
        #expect(abs(signal.value(start) - 2 * factor) < 1e-9)
        #expect(abs(signal.value(start + 600_000) - 2.3 * factor) < 1e-9)
    }

    @Test func distanceSensorSeesTheWaterComeCloser() {
        let point = PointSpec(name: "d", quantity: "distance", table: .holding, address: 0, type: .u16, unit: "m")
        let signal = SimulatedSignal.plausible(for: point, start: start, riverLevelMeters: 2)
        #expect(signal.value(start + 600_000) < signal.value(start))
    }

    @Test func rainTipsCountWholeStepsFromZero() {
        let point = PointSpec(name: "tips", quantity: "rain_tips", table: .input, address: 0, type: .u16, unit: "count")
        let signal = SimulatedSignal.plausible(for: point, start: start, riverLevelMeters: 0)
        #expect(signal.value(start) == 0)
        #expect(signal.value(start + 90_000) == 3)
        #expect(signal.value(start + 600_000) == 20)
    }

    @Test func valuesAreClampedToThePointsValidRange() {
        let point = PointSpec(
            name: "level", quantity: "water_level", table: .holding, address: 0, type: .u16, unit: "m",
            validRange: 0...3)
        let signal = SimulatedSignal.plausible(for: point, start: start, riverLevelMeters: 2.5)
        #expect(signal.value(start + 3_600_000) == 3)
    }

    @Test func unknownQuantitiesHoldTheMiddleOfTheirRange() {
        let point = PointSpec(
            name: "x", quantity: "wind_gust", table: .holding, address: 0, type: .u16, validRange: 10...30)
        let signal = SimulatedSignal.plausible(for: point, start: start, riverLevelMeters: 0)
        #expect(day.allSatisfy { signal.value($0) == 20 })
    }

    @Test func scriptedSeriesHoldsEachStep() {
        let signal = SimulatedSignal.series([(at: 2000, value: 3), (at: 1000, value: 1)])
        #expect([0, 1000, 1999, 2000, 9000].map { signal.value($0) } == [1, 1, 1, 3, 3])
    }

    @Test func simulatorPinsAndSilencesUnits() {
        let simulator = ModbusSimulator(
            fixed: [(unit: 3, image: RegisterImage([.holding: [4: 0x0102]]))], clock: FakeClock(), logger: quietLogger)
        simulator.pin(unit: 3, image: RegisterImage([.holding: [5: 7]]))
        #expect(simulator.image(unit: 3, at: 0)?.tables[.holding] == [4: 0x0102, 5: 7])
        #expect(simulator.image(unit: 4, at: 0) == nil)
        #expect(simulator.unitIds == [3])
        simulator.setSilent(unit: 3, true)
        if case .silent = simulator.lookup(unit: 3) {} else { Issue.record("unit 3 should be silent") }
    }
}
