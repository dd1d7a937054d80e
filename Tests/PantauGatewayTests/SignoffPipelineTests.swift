import Foundation
import Logging
import PantauCore
import Synchronization
import Testing

@testable import PantauGateway

private final class Sink: MessageSink {
    let messages = Mutex<[OutboundMessage]>([])
    func append(_ m: [OutboundMessage]) { messages.withLock { $0 += m } }
    var all: [OutboundMessage] { messages.withLock { $0 } }
}

private final class ManualClock: GatewayClock {
    let millis = Mutex<Int64>(1_800_000_000_000)
    func now() -> UnixMillis { millis.withLock { $0 } }
    func monotonicNanos() -> UInt64 { UInt64(now()) * 1_000_000 }
}

/// Issue 19 items 2, 9, 10 and 12 at the pipeline's seam (the reading hand-over, the journal sink, the saved state),
/// with an injected clock.
@Suite struct SignoffPipelineTests {
    static let profile = DeviceProfile(
        id: "lvl",
        points: [
            PointSpec(name: "level", quantity: "water_level", table: .holding, address: 0, type: .i16, unit: "cm")
        ])

    static func config(devices: [String] = ["river"], rate: Double? = 20) -> GatewayConfig {
        let flood = FloodAlertConfig(
            point: "level", siaga3: 150, siaga2: 200, siaga1: 250, rateOfRise: rate, rateOfRisePeriod: .minutes(15),
            pollIntervals: [.siaga3: .seconds(30), .siaga2: .seconds(10)])
        return GatewayConfig(
            identity: GatewayIdentity(site: "s", id: "g"),
            buses: [BusConfig(name: "b", transport: .tcp(host: "h", port: 502))],
            devices: devices.map {
                DeviceConfig(
                    name: $0, bus: "b", unitId: 1, profile: profile, pollInterval: .seconds(60), flood: [flood])
            },
            mqtt: MQTTConfig(brokers: [.init(host: "h", port: 1883)], clientId: "c"),
            aggregation: AggregationConfig(windows: [.minutes(15)]))
    }

    static func poll(_ level: Double, at t: Int64, device: String = "river") -> DevicePoll {
        DevicePoll(
            device: device,
            readings: [
                Reading(
                    device: device, point: "level", quantity: "water_level", unit: "cm", value: .number(level),
                    quality: .good, acquiredAt: t)
            ], error: nil, acquiredAt: t)
    }

    static func json(_ m: OutboundMessage) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(m.body)) as? [String: Any]) ?? [:]
    }

    @Test("19.2: a device a reload removes gets a retained availability offline/removed")
    func removedDevice() {
        let sink = Sink()
        let clock = ManualClock()
        let pipeline = ReadingPipeline(
            config: Self.config(devices: ["river", "canal"]), sink: sink, clock: clock, logger: Logger(label: "t"),
            onPollInterval: { _, _ in })
        pipeline.reconfigure(Self.config(devices: ["river"]))
        let status = sink.all.filter { $0.kind == .status }
        #expect(status.count == 1)
        #expect(status.first?.topic == "pantau/s/g/devices/canal/availability")
        #expect(status.first?.retain == true)
        #expect(status.first.map(Self.json)?["state"] as? String == "offline")
        #expect(status.first.map(Self.json)?["reason"] as? String == "removed")
        // Later events of the removed device are not journaled; a kept device is not touched.
        pipeline.availability(device: "canal", online: true, reason: "")
        pipeline.reconfigure(Self.config(devices: ["river"]))
        #expect(sink.all.filter { $0.kind == .status }.count == 1)
    }

    @Test("19.9 and 19.10: a restart keeps the rate-of-rise history, announces the state once, clears on time")
    func restartDuringRateOfRise() throws {
        let clock = ManualClock()
        let t0 = clock.now()
        let first = ReadingPipeline(
            config: Self.config(), sink: Sink(), clock: clock, logger: Logger(label: "t"),
            onPollInterval: { _, _ in })
        for (i, level) in [100.0, 105, 112, 125].enumerated() {
            first.handle(Self.poll(level, at: t0 + Int64(i) * 60_000))
        }
        let saved = first.snapshot()

        let sink = Sink()
        let second = ReadingPipeline(
            config: Self.config(), sink: sink, clock: clock, logger: Logger(label: "t"),
            onPollInterval: { _, _ in })
        second.restore(saved)
        clock.millis.withLock { $0 = t0 + 200_000 }
        second.tick()
        // Announced at start from the restored state: the alert is active (125 - 100 = 25 >= 20).
        let announced = sink.all.filter { $0.kind == .alert }.map(Self.json)
        #expect(announced.count == 1)
        #expect((announced.first?["rate_of_rise"] as? [String: Any])?["active"] as? Bool == true)
        // Flat at 125: active while the low of 100 (t0) or 105 (t0 + 1 min) is within the 15 minutes; at minute 17
        // the low is 112 and the rise 13: cleared then, exactly as without the restart.
        for minute in 4...18 { second.handle(Self.poll(125, at: t0 + Int64(minute) * 60_000)) }
        let alerts = sink.all.filter { $0.kind == .alert }.map(Self.json)
        #expect(alerts.count == 2)
        let rate = alerts.last?["rate_of_rise"] as? [String: Any]
        #expect(rate?["active"] as? Bool == false)
        #expect(rate?["rise"] as? Double == 13)
        #expect(alerts.last?["value_at"] as? Int64 == t0 + 17 * 60_000)
    }

    @Test("19.12: a window's expected count follows the flood level's poll interval")
    func coverageFollowsFloodPolling() throws {
        let sink = Sink()
        let clock = ManualClock()
        let t0 = (clock.now() / 900_000) * 900_000
        let pipeline = ReadingPipeline(
            config: Self.config(rate: nil), sink: sink, clock: clock, logger: Logger(label: "t"),
            onPollInterval: { _, _ in })
        // 5 minutes at 60 s, then siaga3 (30 s polling) from minute 5 to the end of the window.
        var t = t0
        while t < t0 + 300_000 {
            pipeline.handle(Self.poll(100, at: t))
            t += 60_000
        }
        while t < t0 + 900_000 {
            pipeline.handle(Self.poll(160, at: t))
            t += 30_000
        }
        clock.millis.withLock { $0 = t0 + 910_000 }
        pipeline.tick()
        let window = sink.all.filter { $0.kind == .aggregate }.map(Self.json).first { $0["start"] as? Int64 == t0 }
        // 5 readings + 20 readings; expected 300 s / 60 s + 600 s / 30 s = 25: full coverage, not 25/15 capped.
        #expect(window?["count"] as? Int == 25)
        #expect((window?["expected"] as? Double).map { abs($0 - 25) < 1e-9 } == true)
    }
}
