import Foundation
import Testing

@testable import PantauCore

@Suite("Environment air-quality indexer")
struct EnvironmentAirQualityIndexerTests {
    static func pm(_ value: Double, minute: Int64, quantity: String = "pm2_5", unit: String = "ug/m3") -> Reading {
        envReading(value, at: envMidnight + minute * envMinute, point: quantity, quantity: quantity, unit: unit)
    }

    /// One sample a minute over `[from, to)` minutes after midnight.
    static func fill(
        _ indexer: inout AirQualityIndexer, _ value: Double, minutes: Range<Int64>, quantity: String = "pm2_5",
        unit: String = "ug/m3"
    ) {
        for m in minutes { indexer.ingest(pm(value, minute: m, quantity: quantity, unit: unit)) }
    }

    @Test("24 h average gives the ISPU; the critical parameter is named")
    func ispu() {
        var ix = AirQualityIndexer(config: AirQualityConfig(), expectedInterval: .minutes(1))
        Self.fill(&ix, 55.4, minutes: 0..<1440)
        Self.fill(&ix, 100, minutes: 0..<1440, quantity: "pm10")
        let r = ix.evaluate(now: envMidnight + 24 * envHour).ispu!
        #expect(r.index?.value == 100)
        #expect(r.category == .sedang)
        #expect(r.critical == .pm2_5)
        #expect(r.parameters.first { $0.pollutant == .pm10 }?.subIndex?.value == 75)
    }

    @Test("below the minimum coverage a parameter is insufficient data, never a number")
    func coverage() {
        var ix = AirQualityIndexer(config: AirQualityConfig(), expectedInterval: .minutes(1))
        // 17 of 24 hours = 0.708.
        Self.fill(&ix, 30, minutes: 420..<1440)
        let sparse = ix.ispu(now: envMidnight + 24 * envHour)
        #expect(sparse.index == nil)
        #expect(sparse.parameters.first?.subIndex == nil)
        #expect(envApproximately(sparse.parameters.first?.average.coverage, 1020.0 / 1440))
        // 18 of 24 hours = 0.75 exactly: enough.
        Self.fill(&ix, 30, minutes: 360..<420)
        #expect(ix.ispu(now: envMidnight + 24 * envHour).index != nil)
    }

    @Test("averaging period per parameter is configurable")
    func averaging() {
        var ix = AirQualityIndexer(
            config: AirQualityConfig(averaging: ["pm2_5": .minutes(60)]), expectedInterval: .minutes(1))
        Self.fill(&ix, 200, minutes: 0..<60)
        Self.fill(&ix, 15.5, minutes: 60..<120)
        let r = ix.ispu(now: envMidnight + 2 * envHour)
        #expect(r.index?.value == 50)
        #expect(r.parameters.first?.average.averaging == .minutes(60))
    }

    @Test("gas readings in ppb and mg/m3 are converted")
    func units() {
        var ix = AirQualityIndexer(
            config: AirQualityConfig(averaging: ["no2": .minutes(60), "co": .minutes(60)]),
            expectedInterval: .minutes(1))
        // 80 µg/m³ NO2 = 42.5166 ppb; 8 mg/m³ CO = 8000 µg/m³.
        Self.fill(&ix, 80 * 24.45 / 46.0055, minutes: 0..<60, quantity: "no2", unit: "ppb")
        Self.fill(&ix, 8, minutes: 0..<60, quantity: "co", unit: "mg/m3")
        let rejected = [
            Self.pm(1, minute: 1, quantity: "temperature", unit: "degC"),
            Self.pm(1, minute: 1, quantity: "no2", unit: "V"),
        ]
        .map { ix.ingest($0) }
        #expect(rejected == [false, false])
        let r = ix.ispu(now: envMidnight + envHour)
        #expect(r.parameters.first { $0.pollutant == .no2 }?.subIndex?.value == 50)
        #expect(r.parameters.first { $0.pollutant == .co }?.subIndex?.value == 100)
        #expect(r.critical == .co)
    }

    @Test("published at the first evaluation, each new hour, and on a category change")
    func publication() {
        var ix = AirQualityIndexer(
            config: AirQualityConfig(averaging: ["pm2_5": .minutes(60)]), expectedInterval: .minutes(1))
        Self.fill(&ix, 10, minutes: 0..<60)
        #expect(ix.evaluate(now: envMidnight + envHour).publishISPU)
        #expect(!ix.evaluate(now: envMidnight + envHour + 10 * envMinute).publishISPU)
        // Pollution rises: the average over the last hour crosses into Sedang mid-hour.
        Self.fill(&ix, 100, minutes: 60..<80)
        let changed = ix.evaluate(now: envMidnight + 80 * envMinute)
        #expect(changed.ispu?.category == .sedang)
        #expect(changed.publishISPU)
        #expect(!ix.evaluate(now: envMidnight + 81 * envMinute).publishISPU)
        #expect(ix.evaluate(now: envMidnight + 2 * envHour).publishISPU)
        #expect(changed.aqi == nil && !changed.publishAQI)
    }

    @Test("AQI: NowCast from clock hours reproduces the EPA worked example")
    func nowCast() {
        var ix = AirQualityIndexer(config: AirQualityConfig(indices: [.aqi]), expectedInterval: .minutes(1))
        let oldestFirst: [Double] = [50, 80, 75, 90, 82, 53, 64, 74, 21, 10, 16, 13]
        for (k, value) in oldestFirst.enumerated() {
            Self.fill(&ix, value, minutes: Int64(k) * 60..<Int64(k + 1) * 60)
        }
        // 12:20: the last complete hour is 11:00-12:00 (the 13).
        let e = ix.evaluate(now: envMidnight + 12 * envHour + 20 * envMinute)
        #expect(e.ispu == nil)
        #expect(e.publishAQI)
        let pm = e.aqi!.parameters.first!
        #expect(pm.method == "nowcast")
        #expect(pm.concentration == 17.4)
        #expect(pm.coverage == 1)
        #expect(e.aqi?.index?.value == 66)
        #expect(e.aqi?.category == .moderate)
        #expect(e.aqi?.dominant == .pm2_5)
    }

    @Test("AQI: NowCast needs 2 of the 3 most recent hours")
    func nowCastGap() {
        var ix = AirQualityIndexer(config: AirQualityConfig(indices: [.aqi]), expectedInterval: .minutes(1))
        Self.fill(&ix, 20, minutes: 0..<600)
        // Hours 10 and 11 missing; evaluated at 12:00.
        let r = ix.aqi(now: envMidnight + 12 * envHour)
        #expect(r.index == nil)
        #expect(r.parameters.first?.subIndex == nil)
    }

    @Test("AQI: gases in their table units and averaging periods")
    func gases() {
        var ix = AirQualityIndexer(config: AirQualityConfig(indices: [.aqi]), expectedInterval: .minutes(1))
        Self.fill(&ix, 100, minutes: 0..<60, quantity: "no2", unit: "ppb")
        Self.fill(&ix, 9.4, minutes: 0..<480, quantity: "co", unit: "ppm")
        Self.fill(&ix, 0.070, minutes: 0..<480, quantity: "o3", unit: "ppm")
        Self.fill(&ix, 50, minutes: 0..<480, quantity: "hc", unit: "ug/m3")
        let r = ix.aqi(now: envMidnight + 8 * envHour)
        let byPollutant = Dictionary(uniqueKeysWithValues: r.parameters.map { ($0.pollutant, $0) })
        #expect(byPollutant[.co]?.subIndex?.value == 100)
        #expect(byPollutant[.co]?.method == "8h")
        #expect(byPollutant[.o3]?.metric == .o3_8h)
        #expect(byPollutant[.o3]?.subIndex?.value == 100)
        #expect(byPollutant[.hc] == nil)
        // NO2 was measured in the first hour only: its 1 h average at 08:00 has no data.
        #expect(byPollutant[.no2]?.subIndex == nil)
        let early = ix.aqi(now: envMidnight + envHour)
        #expect(early.parameters.first { $0.pollutant == .no2 }?.subIndex?.value == 100)
    }

    @Test("AQI: 1 h ozone wins when it gives the higher index; high SO2 uses the 24 h average")
    func ozoneAndSulphur() {
        var ix = AirQualityIndexer(config: AirQualityConfig(indices: [.aqi]), expectedInterval: .minutes(1))
        Self.fill(&ix, 0.040, minutes: 0..<420, quantity: "o3", unit: "ppm")
        Self.fill(&ix, 0.300, minutes: 420..<480, quantity: "o3", unit: "ppm")
        Self.fill(&ix, 400, minutes: 420..<480, quantity: "so2", unit: "ppb")
        let r = ix.aqi(now: envMidnight + 8 * envHour)
        let o3 = r.parameters.first { $0.pollutant == .o3 }!
        #expect(o3.metric == .o3_1h)
        // 0.300 ppm 1 h: (300 - 201) / (0.404 - 0.205) * (0.300 - 0.205) + 201 = 248.26 -> 248.
        #expect(o3.subIndex?.value == 248)
        // 1 h SO2 400 ppb > 304 but the 24 h average is not valid: AQI 200.
        let so2 = r.parameters.first { $0.pollutant == .so2 }!
        #expect(so2.subIndex?.value == 200)
    }

    @Test("state survives a restart")
    func restore() throws {
        var ix = AirQualityIndexer(config: AirQualityConfig(), expectedInterval: .minutes(1))
        Self.fill(&ix, 55.4, minutes: 0..<720)
        let data = try JSONEncoder().encode(ix.snapshot())
        var again = AirQualityIndexer(config: AirQualityConfig(), expectedInterval: .minutes(1))
        again.restore(try JSONDecoder().decode(AirQualityIndexer.State.self, from: data))
        Self.fill(&again, 55.4, minutes: 720..<1440)
        #expect(again.ispu(now: envMidnight + 24 * envHour).index?.value == 100)
    }

    /// Issue 19.11: with complete data the coverage is over the trailing averaging period at every instant, never
    /// only over the part of the current minute (or clock period) that has passed.
    @Test(
        "complete data keeps full coverage at every evaluation, across several periods",
        arguments: [
            (averaging: Interval.minutes(1), poll: Interval.seconds(1)),
            (averaging: Interval.minutes(1), poll: Interval.seconds(7)),
            (averaging: Interval.minutes(5), poll: Interval.seconds(2)),
            (averaging: Interval.minutes(15), poll: Interval.seconds(10)),
            (averaging: Interval.seconds(90), poll: Interval.seconds(3)),
        ])
    func trailingCoverage(averaging: Interval, poll: Interval) {
        let config = AirQualityConfig(averaging: ["pm2_5": averaging])
        var ix = AirQualityIndexer(config: config, expectedInterval: poll)
        let start = envMidnight + 13 * envMinute + 17_000  // not on a minute boundary
        let end = start + 4 * averaging.milliseconds
        var t = start
        var evaluations = 0
        var insufficient: [UnixMillis] = []
        var lowest = 1.0
        var published = 0
        while t < end {
            ix.ingest(envReading(35, at: t, point: "pm2_5", quantity: "pm2_5", unit: "ug/m3"))
            t += poll.milliseconds
            // Once a full period is behind us, evaluate at every second until the next poll.
            var now = t - poll.milliseconds + 1
            while now <= t {
                if now >= start + averaging.milliseconds {
                    let e = ix.evaluate(now: now)
                    evaluations += 1
                    if e.publishISPU { published += 1 }
                    let p = e.ispu!.parameters[0]
                    lowest = min(lowest, p.average.coverage)
                    if p.subIndex == nil { insufficient.append(now - start) }
                }
                now += 1000
            }
        }
        #expect(evaluations > 100)
        #expect(insufficient.isEmpty, "insufficient_data at ms after start: \(insufficient.prefix(5))")
        // Short of a full period by at most two polls (one at each end of the period), never by a partial minute.
        let onePoll = Double(poll.milliseconds) / Double(averaging.milliseconds)
        #expect(lowest >= 1 - 2 * onePoll - 1e-9, "lowest coverage \(lowest)")
        // Constant data in one category: published once at the first evaluation (and at an hour change).
        #expect(published <= 2)
    }

    @Test("a partly covered minute at the start of the period counts for the part inside it")
    func proratedOldestMinute() {
        let config = AirQualityConfig(averaging: ["pm2_5": .minutes(1)])
        var ix = AirQualityIndexer(config: config, expectedInterval: .seconds(1))
        // 10:00:00..10:00:59 at 10 ug/m3, 10:01:00..10:01:29 at 40 ug/m3.
        for s in 0..<90 {
            let at = envMidnight + 10 * envHour + Int64(s) * 1000
            ix.ingest(envReading(s < 60 ? 10 : 40, at: at, point: "pm2_5", quantity: "pm2_5", unit: "ug/m3"))
        }
        // At 10:01:30 the trailing minute is 10:00:30..10:01:30: half of the first minute, all 30 s of the second.
        let a = ix.average(.pm2_5, over: .minutes(1), now: envMidnight + 10 * envHour + 90_000)
        #expect(a.samples == 60)
        #expect(envApproximately(a.coverage, 1))
        #expect(envApproximately(a.concentration, 25))
    }
}
