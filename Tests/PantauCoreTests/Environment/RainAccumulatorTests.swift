import Testing

@testable import PantauCore

@Suite("Environment rain")
struct EnvironmentRainTests {
    @Test(
        "BMKG daily categories at their edges",
        arguments: [
            (0.0, RainCategory.none), (0.49, .none), (0.5, .ringan), (19.99, .ringan), (20, .sedang), (49.9, .sedang),
            (50, .lebat), (99.9, .lebat), (100, .sangatLebat), (150, .sangatLebat), (150.1, .ekstrem), (400, .ekstrem),
        ])
    func daily(_ mm: Double, _ category: RainCategory) {
        #expect(RainCategory(daily: mm) == category)
    }

    @Test(
        "BMKG hourly categories at their edges",
        arguments: [
            (0.0, RainCategory.none), (0.9, .none), (1, .ringan), (4.9, .ringan), (5, .sedang), (9.9, .sedang),
            (10, .lebat), (20, .lebat), (20.1, .sangatLebat), (80, .sangatLebat),
        ])
    func hourly(_ mm: Double, _ category: RainCategory) {
        #expect(RainCategory(hourly: mm) == category)
    }

    static func counter(_ value: Double, minute: Int64) -> Reading {
        envReading(value, at: envMidnight + minute * envMinute, point: "rain", quantity: "rain_tips")
    }

    @Test("counter wrap at the modulus")
    func wrap() {
        var rain = RainAccumulator(config: RainConfig(point: "rain", mmPerCount: 0.2, counterModulus: 65536))
        #expect(rain.ingest(Self.counter(65530, minute: 0)) == .first)
        // 65530 -> 4 is 6 + 4 = 10 tips forward: 2 mm in a minute.
        #expect(rain.ingest(Self.counter(4, minute: 1)) == .wrap)
        #expect(rain.ingest(Self.counter(9, minute: 2)) == .normal)
        let r = rain.report(now: envMidnight + 2 * envMinute)
        #expect(r.lastHourMillimetres == 3)
        #expect(r.intervalMillimetres == 3)
        #expect(r.counterResets == 0)
    }

    @Test("a large drop that is not a wrap is a sensor reset")
    func reset() {
        var rain = RainAccumulator(config: RainConfig(point: "rain", mmPerCount: 0.2, counterModulus: 65536))
        _ = rain.ingest(Self.counter(40000, minute: 0))
        // Going forward through the modulus would be 25539 tips (5108 mm) in a minute: implausible.
        #expect(rain.ingest(Self.counter(3, minute: 1)) == .reset)
        let r = rain.report(now: envMidnight + envMinute)
        #expect(r.lastHourMillimetres == 0.6)
        #expect(r.counterResets == 1)
    }

    @Test("a wrap after a long gap is still plausible at the maximum rate")
    func wrapAfterGap() {
        var rain = RainAccumulator(
            config: RainConfig(point: "rain", mmPerCount: 1, counterModulus: 1000), maximumRate: 300)
        _ = rain.ingest(Self.counter(900, minute: 0))
        // 150 mm in 60 minutes is within 300 mm/h.
        #expect(rain.ingest(Self.counter(50, minute: 60)) == .wrap)
        #expect(rain.report(now: envMidnight + 60 * envMinute).lastHourMillimetres == 150)
    }

    @Test("intensity over the sliding hour, totals over 24 h, interval since the last report")
    func sliding() {
        var rain = RainAccumulator(config: RainConfig(point: "rain", mmPerCount: 0.1, counterModulus: 65536))
        // 0.5 mm per 10 minutes for two hours: counter +5 every 10 minutes.
        var count = 0.0
        for k in 0...12 {
            _ = rain.ingest(Self.counter(count, minute: Int64(k) * 10))
            count += 5
        }
        let r = rain.report(now: envMidnight + 120 * envMinute)
        // (now - 1 h, now]: increments at 70, 80, ..., 120 minutes: 6 x 0.5 mm.
        #expect(r.lastHourMillimetres == 3)
        #expect(r.hourlyCategory == .ringan)
        #expect(r.last24HoursMillimetres == 6)
        #expect(r.dailyCategory == .ringan)
        #expect(r.intervalStart == envMidnight)
        #expect(r.intervalMillimetres == 6)
        #expect(r.categoryChanged)
        #expect(!rain.report(now: envMidnight + 121 * envMinute).categoryChanged)
        let later = rain.report(now: envMidnight + 25 * envHour)
        #expect(later.lastHourMillimetres == 0)
        // (01:00, 25:00]: the increments at 70 to 120 minutes remain.
        #expect(later.last24HoursMillimetres == 3)
        #expect(later.intervalMillimetres == 0)
        #expect(later.intervalStart == envMidnight + 121 * envMinute)
        #expect(later.categoryChanged)
        #expect(later.dailyCategory == .ringan)
    }

    @Test("sums of 0.1 mm tips land on band edges exactly")
    func tipSums() {
        var rain = RainAccumulator(config: RainConfig(point: "rain", mmPerCount: 0.1, counterModulus: 65536))
        for k in 0...5 { _ = rain.ingest(Self.counter(Double(k), minute: Int64(k))) }
        #expect(rain.report(now: envMidnight + 5 * envMinute).dailyCategory == .ringan)
    }

    @Test("state survives a restart")
    func restore() {
        var rain = RainAccumulator(config: RainConfig(point: "rain", mmPerCount: 1))
        _ = rain.ingest(Self.counter(10, minute: 0))
        _ = rain.ingest(Self.counter(30, minute: 30))
        var again = RainAccumulator(config: RainConfig(point: "rain", mmPerCount: 1))
        again.restore(rain.snapshot())
        #expect(again.ingest(Self.counter(35, minute: 40)) == .normal)
        #expect(again.report(now: envMidnight + 40 * envMinute).lastHourMillimetres == 25)
    }

    @Test("error readings and other points are ignored")
    func ignored() {
        var rain = RainAccumulator(config: RainConfig(point: "rain"))
        #expect(rain.ingest(envReading(nil, at: envMidnight, point: "rain")) == nil)
        #expect(rain.ingest(envReading(5, at: envMidnight, point: "temp")) == nil)
    }
}
