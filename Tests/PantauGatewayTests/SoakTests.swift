import Foundation
import Logging
import PantauCore
import PantauJournal
import Synchronization
import Testing

@testable import PantauGateway

/// A clock the soak moves by hand: seven days pass in the time the machine needs to process them.
final class SoakClock: GatewayClock {
    let millis: Mutex<Int64>
    init(_ start: Int64) { millis = Mutex(start) }
    func now() -> UnixMillis { millis.withLock { $0 } }
    func monotonicNanos() -> UInt64 { UInt64(now()) * 1_000_000 }
    func set(_ t: Int64) { millis.withLock { $0 = t } }
}

/// Resident memory and open descriptors of this process, from /proc.
/// The poll intervals the pipeline asked for, as the bus threads would apply them.
final class IntervalRequests: Sendable {
    private let map = Mutex<[String: Interval]>([:])
    func withLock<R>(_ body: (inout [String: Interval]) -> R) -> R { map.withLock { body(&$0) } }
}

enum ProcessFootprint {
    static func rssKiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    /// Every descriptor, and those that point into `folder` (the soak's journal files).
    static func descriptors(into folder: String) -> (all: Int, soak: Int) {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        let soak = fds.filter { fd in
            ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? "")
                .hasPrefix(folder)
        }
        return (fds.count, soak.count)
    }
}

/// Issue 11, "a soak with an accelerated clock": seven simulated days of polling (through the pipeline's hand-over
/// from the bus threads), windows, ISPU/AQI, journal age bounds during broker outages, rain counter wraps, daily
/// flood episodes with fast polling, and a restart every midnight (state saved, journal closed and reopened).
/// Memory and descriptors must be flat at the end. libfaketime cannot accelerate the real binary (Swift's
/// CommandLine.arguments come up empty under its LD_PRELOAD), so the clock is injected here instead.
@Suite("Soak: seven simulated days")
struct SoakTests {
    static let day: Int64 = 86_400_000
    static let start: Int64 = 1_767_571_200_000  // 2026-01-05 00:00 UTC

    static func config(journal: String) -> GatewayConfig {
        let level = DeviceProfile(
            id: "lvl",
            points: [
                PointSpec(name: "level", quantity: "water_level", table: .holding, address: 0, type: .i16, unit: "cm")
            ])
        let air = DeviceProfile(
            id: "aq",
            points: [
                PointSpec(name: "pm2_5", quantity: "pm2_5", table: .holding, address: 0, type: .u16, unit: "ug/m3"),
                PointSpec(name: "pm10", quantity: "pm10", table: .holding, address: 1, type: .u16, unit: "ug/m3"),
            ])
        let rain = DeviceProfile(
            id: "rg",
            points: [
                PointSpec(name: "tips", quantity: "counter", table: .holding, address: 0, type: .u16, unit: "count")
            ])
        let flood = FloodAlertConfig(
            point: "level", siaga3: 150, siaga2: 200, siaga1: 250, hysteresis: 5, minimumDwell: .minutes(2),
            rateOfRise: 20, rateOfRisePeriod: .minutes(15),
            pollIntervals: [.siaga3: .seconds(30), .siaga2: .seconds(10), .siaga1: .seconds(10)])
        return GatewayConfig(
            identity: GatewayIdentity(site: "soak", id: "gw"),
            buses: [BusConfig(name: "b", transport: .tcp(host: "h", port: 502))],
            devices: [
                DeviceConfig(
                    name: "river", bus: "b", unitId: 1, profile: level, pollInterval: .seconds(60), flood: [flood]),
                DeviceConfig(
                    name: "air", bus: "b", unitId: 2, profile: air, pollInterval: .seconds(60),
                    airQuality: AirQualityConfig(indices: [.ispu, .aqi])),
                DeviceConfig(
                    name: "rain", bus: "b", unitId: 3, profile: rain, pollInterval: .seconds(60),
                    rain: RainConfig(point: "tips", mmPerCount: 0.2, counterModulus: 65536)),
            ],
            mqtt: MQTTConfig(brokers: [.init(host: "h", port: 1883)], clientId: "c"),
            journal: JournalConfig(
                path: journal, durability: .normal, maxBytes: 64 << 20, maxAge: Interval(milliseconds: day),
                commitInterval: Interval(milliseconds: 200)),
            aggregation: AggregationConfig(windows: [.minutes(1), .minutes(15), .minutes(60)]))
    }

    /// The river of one day: 80 cm, a flood wave from 06:00 (up 2 cm a minute to 270 by 07:35: the rate of rise
    /// too), high water until 11:00, down to 80 by 15:00.
    static func level(at t: Int64) -> Double {
        let minute = Double((t - start) % day) / 60_000
        switch minute {
        case ..<360: return 80
        case ..<455: return 80 + 2 * (minute - 360)
        case ..<660: return 270
        case ..<900: return 270 - (minute - 660) * 190 / 240
        default: return 80
        }
    }

    /// Broker outages: 30 hours from 12:00 on day 1, longer than the journal's one-day age bound (the oldest go),
    /// and 08:00-20:00 on day 5 (the backlog waits). The footprint is compared from day 3 on, after the peak.
    static func brokerDown(at t: Int64) -> Bool {
        let d = (t - start) / day
        let hour = (t - start) % day / 3_600_000
        return (d == 0 && hour >= 12) || (d == 1 && hour < 18) || (d == 4 && hour >= 8 && hour < 20)
    }

    final class Run {
        let folder: String
        let clock = SoakClock(SoakTests.start)
        let logger = Logger(label: "soak") { _ in SwiftLogNoOpLogHandler() }
        var journal: Journal
        var pipeline: ReadingPipeline
        let requested = IntervalRequests()
        var delivered: [OutboundMessage] = []
        var acked = 0

        init(folder: String) throws {
            self.folder = folder
            let config = SoakTests.config(journal: folder + "/journal.sqlite")
            journal = try Journal(config: config.journal, clock: clock, logger: logger)
            pipeline = ReadingPipeline(
                config: config, sink: journal, clock: clock, logger: logger, onPollInterval: { _, _ in })
            pipeline = makePipeline()
        }

        func makePipeline() -> ReadingPipeline {
            let requested = self.requested
            return ReadingPipeline(
                config: SoakTests.config(journal: folder + "/journal.sqlite"), sink: journal, clock: clock,
                logger: logger, onPollInterval: { device, interval in requested.withLock { $0[device] = interval } })
        }

        /// What Gateway.stop and a new Gateway do: save the state, close the journal, open it, restore.
        func restart() throws {
            journal.saveState(key: Gateway.stateKey, pipeline.snapshot())
            try journal.flush()
            journal.close()
            let config = SoakTests.config(journal: folder + "/journal.sqlite")
            journal = try Journal(config: config.journal, clock: clock, logger: logger)
            pipeline = makePipeline()
            if let saved = journal.loadState(key: Gateway.stateKey) { pipeline.restore(saved) }
            requested.withLock { $0 = pipeline.requestedPollIntervals() }
        }

        /// The publisher's part: everything committed is leased and acknowledged, as after a PUBACK.
        func publish() throws {
            try journal.flush()
            while true {
                let batch = journal.lease(limit: 2000, now: clock.now())
                if batch.isEmpty { break }
                delivered += batch.map(\.record.message).filter { $0.kind == .alert || $0.topic.hasSuffix("/rain") }
                journal.acknowledge(batch.map(\.record.seq))
                acked += batch.count
            }
        }
    }

    static func poll(_ device: String, at t: Int64, tips: Int) -> DevicePoll {
        func reading(_ point: String, _ quantity: String, _ unit: String, _ value: Double) -> Reading {
            Reading(
                device: device, point: point, quantity: quantity, unit: unit, value: .number(value), quality: .good,
                acquiredAt: t)
        }
        let readings: [Reading]
        switch device {
        case "river": readings = [reading("level", "water_level", "cm", level(at: t))]
        case "air":
            let hour = Double((t - start) % day) / 3_600_000
            let pm25 = 30 + 25 * sin(hour / 24 * 2 * .pi)
            readings = [reading("pm2_5", "pm2_5", "ug/m3", pm25), reading("pm10", "pm10", "ug/m3", pm25 * 1.8)]
        default: readings = [reading("tips", "counter", "count", Double(tips % 65536))]
        }
        return DevicePoll(device: device, readings: readings, error: nil, acquiredAt: t)
    }

    @Test("seven days: memory and descriptors flat, bounds, wraps and floods all working")
    func sevenDays() throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("pantau-soak-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try Run(folder: folder)
        let configured: [String: Int64] = ["river": 60_000, "air": 60_000, "rain": 60_000]
        var nextDue: [String: Int64] = configured.mapValues { _ in Self.start }
        var tips = 65_000  // wraps at 65536 within the first day, and again every few days
        var tipsTotal = 0
        var restarts = 0
        var polls = 0
        var marks: [(day: Int64, rss: Int, fds: Int, soakFds: Int, state: Int, pending: Int)] = []
        let step: Int64 = 10_000
        var t = Self.start
        while t < Self.start + 7 * Self.day {
            run.clock.set(t)
            if t > Self.start && (t - Self.start) % Self.day == 0 {
                try run.restart()
                restarts += 1
                if (t - Self.start) / Self.day == 2 || t == Self.start + 6 * Self.day {
                    // After the long outage (the high-water mark) and before the last day: the footprint to compare.
                    let fds = ProcessFootprint.descriptors(into: folder)
                    marks.append(
                        (
                            (t - Self.start) / Self.day, ProcessFootprint.rssKiB(), fds.all, fds.soak,
                            run.pipeline.snapshot().count, run.journal.stats().pending
                        ))
                }
            }
            for device in ["river", "air", "rain"] where nextDue[device]! <= t {
                if device == "rain" {
                    // Drizzle all week, a storm in the afternoon: 5 tips a minute from 14:00 to 16:00.
                    let hour = (t - Self.start) % Self.day / 3_600_000
                    let increment = (hour == 14 || hour == 15) ? 5 : ((t / 60_000) % 3 == 0 ? 1 : 0)
                    tips += increment
                    tipsTotal += increment
                }
                run.pipeline.handle(Self.poll(device, at: t, tips: tips))
                polls += 1
                let interval = run.requested.withLock { $0[device] }?.milliseconds ?? configured[device]!
                nextDue[device] = t + interval
            }
            // Housekeeping each simulated minute (the gateway's is each second; the windows close the same), the
            // publisher each minute while the broker is up, a state save every ten minutes.
            if (t - Self.start) % 60_000 == 0 { run.pipeline.tick() }
            if (t - Self.start) % 60_000 == 0 && !Self.brokerDown(at: t) { try run.publish() }
            if (t - Self.start) % 600_000 == 0 { run.journal.saveState(key: Gateway.stateKey, run.pipeline.snapshot()) }
            t += step
        }
        run.clock.set(t)
        let fds = ProcessFootprint.descriptors(into: folder)
        marks.append(
            (
                7, ProcessFootprint.rssKiB(), fds.all, fds.soak, run.pipeline.snapshot().count,
                run.journal.stats().pending
            ))
        // The final drain, a live window later: a row acquired early but committed after a later one sits below the
        // live floor and goes out with the backlog once it ages (Journal+Delivery.swift); none is lost.
        run.clock.set(t + 61_000)
        try run.publish()
        try run.journal.flush()
        let stats = run.journal.stats()
        run.journal.close()

        for m in marks {
            print(
                "soak day \(m.day): rss \(m.rss) KiB, descriptors \(m.fds) (journal \(m.soakFds)), "
                    + "saved state \(m.state) B, pending \(m.pending)")
        }
        print(
            "soak: \(polls) polls, \(run.acked) messages acknowledged, \(stats.dropsTotal) dropped by the age bound, "
                + "\(restarts) restarts")

        // Flat: the same journal descriptors after six restarts, the saved state no larger, resident memory
        // within a few MB (the process also runs other suites; a per-poll leak would show as tens of MB).
        let first = marks[0]
        let last = marks[marks.count - 1]
        #expect(marks.count == 3)
        #expect(last.soakFds == first.soakFds, "journal descriptors \(first.soakFds) -> \(last.soakFds)")
        #expect(last.state <= first.state * 5 / 4 + 2048, "saved state \(first.state) -> \(last.state) bytes")
        #expect(last.rss - first.rss < 24 * 1024, "resident memory \(first.rss) -> \(last.rss) KiB")

        // The age bound dropped what the 30 h outage left older than a day; the rest was delivered.
        #expect(stats.dropsTotal > 0)
        #expect(stats.pending == 0)

        // Seven floods: each day the river reached awas and went back to normal; the rate of rise was raised.
        let alerts = run.delivered.filter { $0.kind == .alert }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any]
        }
        let levels = alerts.compactMap { $0["level"] as? Int }
        let awas = zip(levels, levels.dropFirst()).filter { $0.0 != 1 && $0.1 == 1 }.count + (levels.first == 1 ? 1 : 0)
        // Alerts of the 30 h outage may have been dropped only after the age bound; alerts go last, so all 7 remain.
        #expect(awas == 7, "awas declared \(awas) times: \(levels)")
        #expect(alerts.contains { ($0["rate_of_rise"] as? [String: Any])?["active"] as? Bool == true })

        // Rain survived the counter wraps: never negative, and the counter reset count stays 0 (wraps are not resets).
        let rain = run.delivered.filter { $0.topic.hasSuffix("/rain") }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any]
        }
        #expect(!rain.isEmpty)
        #expect(rain.allSatisfy { ($0["mm_interval"] as? Double ?? 0) >= 0 }, "negative rain")
        #expect(tipsTotal > 65_536 - 65_000)
    }
}
