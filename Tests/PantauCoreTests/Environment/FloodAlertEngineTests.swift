import Foundation
import Testing

@testable import PantauCore

@Suite("Environment flood alert")
struct EnvironmentFloodTests {
    typealias Action = FloodAlertEngine.Action

    static func config(
        hysteresis: Double = 5, dwell: Interval = .seconds(0), rateOfRise: Double? = nil, mountingHeight: Double? = nil
    ) -> FloodAlertConfig {
        FloodAlertConfig(
            point: "level", mountingHeight: mountingHeight, siaga3: 100, siaga2: 150, siaga1: 200,
            hysteresis: hysteresis, minimumDwell: dwell, rateOfRise: rateOfRise, rateOfRisePeriod: .minutes(15),
            pollIntervals: [.siaga3: .minutes(30), .siaga2: .minutes(15), .siaga1: .minutes(5)])
    }

    static func engine(_ config: FloodAlertConfig) -> FloodAlertEngine {
        FloodAlertEngine(config: config, devicePollInterval: .minutes(60), staleAfter: .minutes(10))
    }

    /// Feeds (minute, value) pairs, nil for a device error; returns every action with its minute.
    static func feed(_ engine: inout FloodAlertEngine, _ series: [(Int64, Double?)]) -> [Action] {
        series.flatMap { minute, value in
            engine.ingest(
                envReading(value, at: envMidnight + minute * envMinute, point: "level", quantity: "water_level"))
        }
    }

    static func levels(_ actions: [Action]) -> [SiagaLevel] {
        actions.compactMap { if case .levelChanged(_, let to, _, _) = $0 { return to } else { return nil } }
    }

    @Test("rising through each level, then falling, with poll intervals")
    func risingThroughEachLevel() {
        var e = Self.engine(Self.config())
        let actions = Self.feed(&e, [(0, 50), (1, 99.9), (2, 100), (3, 149), (4, 150), (5, 199), (6, 200), (7, 260)])
        #expect(
            actions == [
                .levelChanged(from: .siaga4, to: .siaga3, value: 100, at: envMidnight + 2 * envMinute),
                .pollInterval(.minutes(30)),
                .levelChanged(from: .siaga3, to: .siaga2, value: 150, at: envMidnight + 4 * envMinute),
                .pollInterval(.minutes(15)),
                .levelChanged(from: .siaga2, to: .siaga1, value: 200, at: envMidnight + 6 * envMinute),
                .pollInterval(.minutes(5)),
            ])
        #expect(e.status.level == .siaga1)
        #expect(e.status.since == envMidnight + 6 * envMinute)
        let down = Self.feed(&e, [(8, 196), (9, 194), (10, 120), (11, 90)])
        #expect(Self.levels(down) == [.siaga2, .siaga3, .siaga4])
        #expect(down.last == .pollInterval(.minutes(60)))
        #expect(e.pollInterval == .minutes(60))
    }

    @Test("noise around a threshold does not flap (hysteresis)")
    func hysteresisNoise() {
        var e = Self.engine(Self.config(hysteresis: 5))
        let noisy: [(Int64, Double?)] = [(0, 99), (1, 101), (2, 99), (3, 101), (4, 98), (5, 96), (6, 95), (7, 101)]
        // Up at 101; 99, 98, 96 and 95 are not below 100 - 5; nothing else.
        #expect(Self.levels(Self.feed(&e, noisy)) == [.siaga3])
        #expect(Self.levels(Self.feed(&e, [(8, 94.9), (9, 99.9), (10, 99.5)])) == [.siaga4])
    }

    @Test("noise around a threshold does not flap (dwell)")
    func dwellNoise() {
        var e = Self.engine(Self.config(hysteresis: 0, dwell: .minutes(5)))
        let alternating = (0..<30).map { (Int64($0), $0 % 2 == 0 ? 101.0 : 99.0) }
        #expect(Self.levels(Self.feed(&e, alternating)) == [])
        // Held for 5 minutes: declared at the reading 5 minutes after the first one above.
        let held = Self.feed(&e, (30..<36).map { (Int64($0), 101.0) })
        #expect(held.first == .levelChanged(from: .siaga4, to: .siaga3, value: 101, at: envMidnight + 35 * envMinute))
    }

    @Test("a fast rise past several thresholds declares the highest held level")
    func fastRise() {
        var e = Self.engine(Self.config(dwell: .minutes(5)))
        // Enters siaga3 at 0, siaga2 at 2, siaga1 at 4 minutes; dwell 5 minutes.
        let series: [(Int64, Double?)] = [(0, 120), (2, 170), (4, 210), (5, 215), (7, 220), (9, 225)]
        let actions = Self.feed(&e, series)
        let changes = actions.filter { if case .levelChanged = $0 { return true } else { return false } }
        #expect(
            changes == [
                .levelChanged(from: .siaga4, to: .siaga3, value: 215, at: envMidnight + 5 * envMinute),
                .levelChanged(from: .siaga3, to: .siaga2, value: 220, at: envMidnight + 7 * envMinute),
                .levelChanged(from: .siaga2, to: .siaga1, value: 225, at: envMidnight + 9 * envMinute),
            ])

        // Without dwell, one step straight from 4 to 1.
        var quick = Self.engine(Self.config())
        #expect(
            Self.feed(&quick, [(0, 50), (1, 230)]).first
                == .levelChanged(
                    from: .siaga4, to: .siaga1, value: 230, at: envMidnight + envMinute))
    }

    @Test("stepping down also waits for the dwell, to the lowest level held long enough")
    func dwellDown() {
        var e = Self.engine(Self.config(hysteresis: 5, dwell: .minutes(5)))
        _ = Self.feed(&e, [(0, 210), (5, 210)])
        #expect(e.status.level == .siaga1)
        // Below 195 from minute 6, below 145 from minute 9: at 11 only the step to siaga2 has held 5 minutes.
        let down = Self.feed(&e, [(6, 180), (9, 130), (11, 130), (14, 130)])
        #expect(Self.levels(down) == [.siaga2, .siaga3])
    }

    @Test("rate of rise raises and clears an alert")
    func rateOfRise() {
        var e = Self.engine(Self.config(rateOfRise: 20))
        let rising = Self.feed(&e, [(0, 40), (5, 45), (10, 55), (15, 65)])
        #expect(rising == [.rateOfRise(active: true, risePerPeriod: 25, at: envMidnight + 15 * envMinute)])
        #expect(e.status.rateOfRiseActive)
        // Flat: the rise within the last 15 minutes falls to 65 - 55 = 10 at minute 25.
        let flat = Self.feed(&e, [(20, 65), (25, 65)])
        #expect(flat == [.rateOfRise(active: false, risePerPeriod: 10, at: envMidnight + 25 * envMinute)])
        #expect(e.status.level == .siaga4)
    }

    /// Issue 19.9: a restart in the middle of a rate-of-rise alert (and of a dwell) continues exactly: the status
    /// and the memory go through JSON, the way the gateway saves them, and the series goes on in a new engine.
    @Test("a saved and restored engine continues a rate-of-rise alert and a dwell exactly")
    func restoreContinuesExactly() throws {
        let config = Self.config(dwell: .minutes(5), rateOfRise: 20)
        let before: [(Int64, Double?)] = [(0, 40), (5, 45), (10, 55), (15, 65), (16, 100)]
        let after: [(Int64, Double?)] = [(17, 101), (18, 102), (21, 103), (25, 104), (28, 90), (33, 91), (40, 91)]
        var whole = Self.engine(config)
        let expected = Self.feed(&whole, before + after)

        var first = Self.engine(config)
        var actions = Self.feed(&first, before)
        #expect(first.status.rateOfRiseActive)
        let status = try JSONDecoder().decode(FloodAlertStatus.self, from: JSONEncoder().encode(first.status))
        let memory = try JSONDecoder().decode(FloodAlertEngine.Memory.self, from: JSONEncoder().encode(first.memory))
        var second = FloodAlertEngine(
            config: config, devicePollInterval: .minutes(60), staleAfter: .minutes(10), status: status, memory: memory)
        actions += Self.feed(&second, after)
        #expect(actions == expected)
        #expect(second.status == whole.status)
        // The alert stays active after the restart (a rise of 104 - 55 = 49 over the last 15 minutes at minute 25)
        // until the low of minute 15 leaves the period at 33; the siaga3 dwell that started at minute 16 is
        // declared at minute 21, as without the restart, and the step down at 33.
        #expect(Self.levels(actions) == [.siaga3, .siaga4])
        let cleared = actions.compactMap {
            if case .rateOfRise(false, let rise, let at) = $0 { (rise, at) } else { nil }
        }
        #expect(cleared.count == 1)
        #expect(cleared.first?.0 == 1 && cleared.first?.1 == envMidnight + 33 * envMinute)

        // Without the memory (the old behaviour) the history is gone and the alert ends at the next reading.
        var amnesic = FloodAlertEngine(
            config: config, devicePollInterval: .minutes(60), staleAfter: .minutes(10), status: status)
        let lost = Self.feed(&amnesic, after)
        #expect(lost.first == .rateOfRise(active: false, risePerPeriod: 0, at: envMidnight + 17 * envMinute))
    }

    @Test("the rate-of-rise history stays bounded however fast the polling")
    func boundedHistory() {
        var e = FloodAlertEngine(
            config: FloodAlertConfig(
                point: "level", mountingHeight: nil, siaga3: 1e6, siaga2: 2e6, siaga1: 3e6, hysteresis: 1,
                minimumDwell: .seconds(0), rateOfRise: 1e9, rateOfRisePeriod: .minutes(24 * 60), pollIntervals: [:]),
            devicePollInterval: .seconds(1), staleAfter: .minutes(10))
        // A day of 1 s readings rising without pause: every sample could be the low, yet the history is capped.
        for k in 0..<20_000 {
            let at = envMidnight + Int64(k) * 1000
            _ = e.ingest(envReading(Double(k), at: at, point: "level", quantity: "water_level"))
        }
        #expect(e.memory.recent.count == FloodAlertEngine.historyLimit)
        // Falling readings collapse it: a new low supersedes every earlier sample.
        _ = e.ingest(envReading(-1, at: envMidnight + 20_000_000, point: "level", quantity: "water_level"))
        #expect(e.memory.recent.count == 1)
    }

    @Test("level from a distance sensor: mounting height minus distance")
    func distance() {
        var e = Self.engine(Self.config(mountingHeight: 500))
        let actions = Self.feed(&e, [(0, 420), (1, 380)])
        #expect(actions.first == .levelChanged(from: .siaga4, to: .siaga3, value: 120, at: envMidnight + envMinute))
        #expect(e.status.value == 120)
    }

    @Test("a sensor dropout holds the level and flags stale")
    func dropout() {
        var e = Self.engine(Self.config())
        _ = Self.feed(&e, [(0, 160)])
        #expect(e.status.level == .siaga2)
        // Device errors within staleAfter (10 min) change nothing.
        #expect(Self.feed(&e, [(5, nil), (10, nil)]).isEmpty)
        let stale = Self.feed(&e, [(11, nil)])
        #expect(stale == [.sensorStale(true, at: envMidnight + 11 * envMinute)])
        #expect(e.status.level == .siaga2 && e.status.stale)
        #expect(e.advance(to: envMidnight + 60 * envMinute).isEmpty)
        // Good data returns with a low value: stale clears, the level then steps down normally.
        let back = Self.feed(&e, [(61, 90)])
        #expect(back.first == .sensorStale(false, at: envMidnight + 61 * envMinute))
        #expect(Self.levels(back) == [.siaga4])
    }

    @Test("silence alone flags stale through advance(to:)")
    func silence() {
        var e = Self.engine(Self.config())
        _ = Self.feed(&e, [(0, 120)])
        #expect(e.advance(to: envMidnight + 10 * envMinute).isEmpty)
        #expect(
            e.advance(to: envMidnight + 10 * envMinute + 1) == [
                .sensorStale(true, at: envMidnight + 10 * envMinute + 1)
            ])
        #expect(e.status.level == .siaga3)
        #expect(e.advance(to: envMidnight + 20 * envMinute).isEmpty)
    }

    @Test("readings of other points are ignored")
    func otherPoints() {
        var e = Self.engine(Self.config())
        #expect(e.ingest(envReading(500, at: envMidnight, point: "temperature")).isEmpty)
        #expect(e.status.value == nil)
    }

    @Test("float switch: N samples and a dwell")
    func floatSwitch() {
        var d = FloatSwitchDebouncer(samples: 3, dwell: .seconds(20))
        func sw(_ on: Bool, _ s: Int64) -> Reading {
            Reading(
                device: "d", point: "float", quantity: "float_switch", unit: "", value: .flag(on), quality: .good,
                acquiredAt: envMidnight + s * 10_000)
        }
        // A bounce (true once) is ignored; three trues spanning 20 s declare true.
        let outputs = [
            sw(false, 0), sw(false, 1), sw(false, 2), sw(true, 3), sw(false, 4), sw(true, 5), sw(true, 6),
            sw(true, 7),
        ].map { d.ingest($0) }
        #expect(outputs == [nil, nil, false, nil, nil, nil, nil, true])
        #expect(d.state == true)
    }
}
