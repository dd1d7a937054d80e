import Foundation
import Logging
import PantauCore
import Synchronization
import Testing

@testable import PantauGateway

private final class CollectingSink: MessageSink {
    let messages = Mutex<[OutboundMessage]>([])
    func append(_ m: [OutboundMessage]) { messages.withLock { $0 += m } }
    var all: [OutboundMessage] { messages.withLock { $0 } }
}

private final class WallClock: GatewayClock {
    let millis = Mutex<Int64>(1_800_000_000_000)
    func now() -> UnixMillis { millis.withLock { $0 } }
    func monotonicNanos() -> UInt64 { UInt64(now()) * 1_000_000 }
}

@Suite struct ReadingPipelineTests {
    let profile = DeviceProfile(
        id: "lvl",
        points: [
            PointSpec(name: "level", quantity: "water_level", table: .holding, address: 0, type: .i16, unit: "cm"),
            PointSpec(
                name: "temp", quantity: "temperature", table: .holding, address: 1, type: .i16, scale: 0.1, unit: "Cel"),
            PointSpec(name: "decimals", quantity: "decimals", table: .holding, address: 2, type: .u16, publish: false),
        ])

    func config() -> GatewayConfig {
        let device = DeviceConfig(
            name: "river", bus: "b", unitId: 1, profile: profile, pollInterval: .seconds(60),
            report: ["temp": ReportStrategy(mode: .onChange, deadbandAbsolute: 0.5)],
            flood: [
                FloodAlertConfig(
                    point: "level", siaga3: 150, siaga2: 200, siaga1: 250,
                    pollIntervals: [.siaga3: .seconds(30), .siaga2: .seconds(10)])
            ])
        return GatewayConfig(
            identity: GatewayIdentity(site: "s", id: "g"),
            buses: [BusConfig(name: "b", transport: .tcp(host: "h", port: 502))],
            devices: [device], mqtt: MQTTConfig(brokers: [.init(host: "h", port: 1883)], clientId: "c"))
    }

    func poll(_ level: Double, _ temp: Double, at t: UnixMillis) -> DevicePoll {
        let r = { (p: String, q: String, u: String, v: Double) in
            Reading(device: "river", point: p, quantity: q, unit: u, value: .number(v), quality: .good, acquiredAt: t)
        }
        return DevicePoll(
            device: "river",
            readings: [
                r("level", "water_level", "cm", level), r("temp", "temperature", "Cel", temp),
                r("decimals", "decimals", "", 0),
            ], error: nil, acquiredAt: t)
    }

    @Test func telemetryHonoursReportStrategiesAndHidesHelperPoints() throws {
        let sink = CollectingSink()
        let clock = WallClock()
        let pipeline = ReadingPipeline(
            config: config(), sink: sink, clock: clock, logger: Logger(label: "t"), onPollInterval: { _, _ in })
        let t0 = clock.now()
        pipeline.handle(poll(100, 25.0, at: t0))
        pipeline.handle(poll(101, 25.2, at: t0 + 60_000))  // temp within the deadband: not sent
        pipeline.handle(poll(102, 26.0, at: t0 + 120_000))  // temp moved 1.0: sent
        let telemetry = sink.all.filter { $0.kind == .telemetry }
        #expect(telemetry.count == 3)
        let names = try telemetry.map { m -> [String] in
            let pack = try #require(try JSONSerialization.jsonObject(with: Data(m.body)) as? [[String: Any]])
            return pack.compactMap { $0["n"] as? String }
        }
        #expect(names == [["level", "temp"], ["level"], ["level", "temp"]])
        #expect(
            telemetry.allSatisfy {
                $0.topic == "pantau/s/g/devices/river/telemetry" && $0.contentType == "application/senml+json"
            })
    }

    @Test func aRisingRiverRaisesRetainedAlertsAndShortensThePollInterval() throws {
        let sink = CollectingSink()
        let clock = WallClock()
        let requested = Mutex<[Interval]>([])
        let pipeline = ReadingPipeline(
            config: config(), sink: sink, clock: clock, logger: Logger(label: "t"),
            onPollInterval: { device, i in
                #expect(device == "river")
                requested.withLock { $0.append(i) }
            })
        let t0 = clock.now()
        for (i, level) in [100.0, 160, 210].enumerated() {
            pipeline.handle(poll(level, 25, at: t0 + Int64(i) * 60_000))
        }
        let alerts = sink.all.filter { $0.kind == .alert }
        // The state at the first reading (issue 19.10: normal, 4), then one message per change.
        #expect(alerts.count == 3)
        #expect(alerts.allSatisfy { $0.retain && $0.topic == "pantau/s/g/devices/river/alerts/level" })
        let levels = try alerts.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any])["level"] as? Int
        }
        #expect(levels == [4, 3, 2])
        #expect(requested.withLock { $0 } == [.seconds(30), .seconds(10)])
        #expect(pipeline.requestedPollIntervals() == ["river": .seconds(10)])
    }

    @Test func snapshotRestoresWindowsAndAlertState() throws {
        let clock = WallClock()
        let first = ReadingPipeline(
            config: config(), sink: CollectingSink(), clock: clock, logger: Logger(label: "t"),
            onPollInterval: { _, _ in })
        let t0 = (clock.now() / 3_600_000) * 3_600_000
        first.handle(poll(160, 25, at: t0 + 1000))
        let saved = first.snapshot()
        #expect(!saved.isEmpty)

        let sink = CollectingSink()
        let second = ReadingPipeline(
            config: config(), sink: sink, clock: clock, logger: Logger(label: "t"), onPollInterval: { _, _ in })
        second.restore(saved)
        #expect(second.requestedPollIntervals() == ["river": .seconds(30)])
        // Still at siaga3: the restored state is announced once (issue 19.10), then a reading at the same level
        // raises no new alert.
        second.handle(poll(161, 25, at: t0 + 61_000))
        let announced = sink.all.filter { $0.kind == .alert }
        #expect(announced.count == 1)
        let body = try announced.first.map { try JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }
        #expect(body??["level"] as? Int == 3)
        second.handle(poll(162, 25, at: t0 + 62_000))
        #expect(sink.all.filter { $0.kind == .alert }.count == 1)
        // The 1-minute window that was open before the restart closes with both readings.
        second.handle(poll(162, 25, at: t0 + 125_000))
        let oneMinute = sink.all.filter {
            $0.kind == .aggregate && $0.topic.hasSuffix("/aggregates/1m") && $0.topic.contains("river")
        }
        let first1m = try oneMinute.compactMap {
            try JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any]
        }
        .first { ($0["point"] as? String) == "level" && ($0["start"] as? Int64) == t0 }
        #expect(first1m?["count"] as? Int == 1)
    }

    @Test func aBouncingFloatSwitchRaisesOneRetainedAlertOnlyOnceItHolds() throws {
        let switchProfile = DeviceProfile(
            id: "fs",
            points: [
                PointSpec(name: "float_high", quantity: "status", table: .discrete, address: 0, type: .bit)
            ])
        let device = DeviceConfig(
            name: "drain", bus: "b", unitId: 2, profile: switchProfile, pollInterval: .seconds(5),
            floatSwitches: [FloatSwitchConfig(point: "float_high", samples: 3)])
        var c = config()
        c.devices = [device]
        let sink = CollectingSink()
        let clock = WallClock()
        let pipeline = ReadingPipeline(
            config: c, sink: sink, clock: clock, logger: Logger(label: "t"), onPollInterval: { _, _ in })
        let t0 = clock.now()
        for (i, wet) in [false, false, false, true, false, true, true, true, true].enumerated() {
            let r = Reading(
                device: "drain", point: "float_high", quantity: "status", unit: "", value: .flag(wet),
                quality: .good, acquiredAt: t0 + Int64(i) * 5000)
            pipeline.handle(DevicePoll(device: "drain", readings: [r], error: nil, acquiredAt: r.acquiredAt))
        }
        let alerts = try sink.all.filter { $0.kind == .alert }.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any])
        }
        #expect(alerts.map { $0["state"] as? String } == ["dry", "wet"])
        #expect(alerts.last?["at"] as? Int64 == t0 + 7 * 5000)
        #expect(
            sink.all.filter { $0.kind == .alert }.allSatisfy { $0.retain && $0.topic.hasSuffix("/alerts/float_high") })
    }
}
