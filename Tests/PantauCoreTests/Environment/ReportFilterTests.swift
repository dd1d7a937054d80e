import Testing

@testable import PantauCore

@Suite("Environment report filter")
struct EnvironmentReportFilterTests {
    /// Feeds (value or nil for a device error) at one reading per 10 s and returns which were published.
    static func run(_ strategy: ReportStrategy, _ values: [Double?]) -> [Bool] {
        var filter = ReportFilter(strategy: strategy)
        return values.enumerated().map { k, v in
            filter.shouldPublish(envReading(v, at: envMidnight + Int64(k) * 10_000))
        }
    }

    @Test func everyPoll() {
        #expect(Self.run(ReportStrategy(), [1, 1, 1, 2]) == [true, true, true, true])
    }

    @Test("on change without deadband: any change")
    func anyChange() {
        #expect(Self.run(ReportStrategy(mode: .onChange), [1, 1, 1.01, 1.01, 1]) == [true, false, true, false, true])
    }

    @Test("absolute deadband compares with the last published value (drift is caught)")
    func absoluteDeadband() {
        let s = ReportStrategy(mode: .onChange, deadbandAbsolute: 0.5)
        // 10.3 and 10.5 (exactly 0.5 is not beyond) withheld; 10.6 published; 10.2 withheld; 10.05 is 0.55 off 10.6.
        #expect(Self.run(s, [10, 10.3, 10.5, 10.6, 10.2, 10.05]) == [true, false, false, true, false, true])
    }

    @Test("relative deadband")
    func relativeDeadband() {
        let s = ReportStrategy(mode: .onChange, deadbandRelative: 0.1)
        #expect(Self.run(s, [100, 109, 111, 100, 0, 0, 0.001]) == [true, false, true, false, true, false, true])
    }

    @Test("heartbeat publishes an unchanged value after the maximum silence")
    func heartbeat() {
        let s = ReportStrategy(mode: .onChange, deadbandAbsolute: 1, heartbeat: .seconds(30))
        // Every 10 s: t0 published, t30 heartbeat, t60 heartbeat.
        #expect(Self.run(s, [5, 5, 5, 5, 5, 5, 5]) == [true, false, false, true, false, false, true])
    }

    @Test("a fault is always seen: quality changes publish, repeated errors follow the strategy")
    func faults() {
        let s = ReportStrategy(mode: .onChange, deadbandAbsolute: 1)
        #expect(Self.run(s, [5, nil, nil, 5, 5]) == [true, true, false, true, false])
        var filter = ReportFilter(strategy: s)
        let published = [
            envReading(5, at: envMidnight), envReading(5, at: envMidnight + 1, quality: .outOfRange),
            envReading(nil, at: envMidnight + 2),
            envReading(nil, at: envMidnight + 3),
        ].map { filter.shouldPublish($0) }
        #expect(published == [true, true, true, false])
    }

    @Test("flags publish when they flip")
    func flags() {
        var filter = ReportFilter(strategy: ReportStrategy(mode: .onChange))
        func flag(_ b: Bool, _ k: Int64) -> Reading {
            Reading(
                device: "d", point: "float", quantity: "switch", unit: "", value: .flag(b), quality: .good,
                acquiredAt: k)
        }
        #expect(
            [flag(false, 0), flag(false, 1), flag(true, 2), flag(true, 3)].map { filter.shouldPublish($0) }
                == [true, false, true, false])
    }
}
