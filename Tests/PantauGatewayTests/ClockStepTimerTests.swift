import Foundation
import Logging
import PantauCore
import Testing

@testable import PantauGateway

/// Issue 14: the float switch's debounce and the flood engine's dwell count the time that passed, not what the wall
/// clock says: a step of the synchronised wall clock (a time service correcting it) neither fires nor suppresses
/// them.
@Suite struct ClockStepTimerTests {
    static let trueBoot = ClockTrustTests.trueBoot

    let profile = DeviceProfile(
        id: "tank",
        points: [
            PointSpec(name: "level", quantity: "water_level", table: .holding, address: 0, type: .i16, unit: "cm"),
            PointSpec(name: "float", quantity: "float_switch", table: .holding, address: 1, type: .u16, unit: ""),
        ])

    /// A float switch declared after 2 equal readings over 120 s; Siaga 3 (waspada) after 300 s at or above 100 cm.
    func config() -> GatewayConfig {
        let device = DeviceConfig(
            name: "tank", bus: "b", unitId: 1, profile: profile, pollInterval: .seconds(60),
            flood: [
                FloodAlertConfig(point: "level", siaga3: 100, siaga2: 200, siaga1: 300, minimumDwell: .seconds(300))
            ],
            floatSwitches: [FloatSwitchConfig(point: "float", samples: 2, dwell: .seconds(120))])
        return GatewayConfig(
            identity: GatewayIdentity(site: "s", id: "g"),
            buses: [BusConfig(name: "b", transport: .tcp(host: "h", port: 502))], devices: [device],
            mqtt: MQTTConfig(brokers: [.init(host: "h", port: 1883)], clientId: "c"),
            aggregation: AggregationConfig(windows: [.minutes(1)]))
    }

    func poll(at t: UnixMillis) -> DevicePoll {
        let readings = [("level", 150.0), ("float", 1.0)].map { point, value in
            Reading(
                device: "tank", point: point, quantity: point == "level" ? "water_level" : "float_switch",
                unit: point == "level" ? "cm" : "", value: .number(value), quality: .good, acquiredAt: t)
        }
        return DevicePoll(device: "tank", readings: readings, error: nil, acquiredAt: t)
    }

    /// Polls at boottime 60 s, 120 s, ... 600 s on a synchronised clock, the wall clock stepped by `step` just before
    /// the poll at 120 s (a tick runs after each poll, as the gateway's once a second). Returns the boottimes (in
    /// seconds) of the polls after which the float switch first said `wet` and the flood level became waspada.
    /// With `syncAt120` the board boots unsynchronised at 1970 instead and the clock synchronises there (the
    /// timeline's jump, instead of a step).
    func run(step: Int64, syncAt120: Bool = false) throws -> (wet: Int64?, waspada: Int64?) {
        let board = ClockTrustBoard()
        if !syncAt120 { board.synchronise(atBoottime: 0) }
        let sink = ClockTrustSink()
        let pipeline = ClockTrustTests.pipeline(config(), sink, board)
        pipeline.tick()
        var wet: Int64?
        var waspada: Int64?
        for s in stride(from: Int64(60), through: 600, by: 60) {
            board.set { b in
                b.boottime = s * 1000
                if s == 120 { b.wallOffset += step }
            }
            if syncAt120 && s == 120 { board.synchronise(atBoottime: 120_000) }
            let before = sink.all.count
            pipeline.handle(poll(at: board.now()))
            pipeline.tick()
            for m in sink.all[before...] where m.kind == .alert {
                let body = String(decoding: m.body, as: UTF8.self)
                if wet == nil, m.topic.hasSuffix("/float"), body.contains(#""state":"wet""#) { wet = s }
                if waspada == nil, body.contains(#""waspada""#) { waspada = s }
            }
        }
        #expect(pipeline.clockStatus().stepsSeen == (step == 0 && !syncAt120 ? 0 : 1))
        return (wet, waspada)
    }

    @Test func withoutAStepTheTimersRunTheirCourse() throws {
        let r = try run(step: 0)
        // Wet from 60 s: two readings by 120 s, but held only 60 s then; 120 s at 180 s.
        #expect(r.wet == 180)
        // At or above Siaga 3 from 60 s: 300 s at 360 s.
        #expect(r.waspada == 360)
    }

    /// A forward step of an hour: without following it, the debounce and the dwell would count the hour.
    @Test func aForwardStepFiresNoTimerEarly() throws {
        let steady = try run(step: 0)
        let stepped = try run(step: 3_600_000)
        #expect(stepped.wet == 180 && steady.wet == 180)
        #expect(stepped.waspada == 360 && steady.waspada == 360)
    }

    /// A backward step of 100 s: without following it, the debounce and the dwell would lose 100 s.
    @Test func aBackwardStepSuppressesNoTimer() throws {
        let steady = try run(step: 0)
        let stepped = try run(step: -100_000)
        #expect(stepped.wet == 180 && steady.wet == 180)
        #expect(stepped.waspada == 360 && steady.waspada == 360)
    }

    /// The synchronisation's jump (1970 to the true time) moves the debounce as well as the flood dwell.
    @Test func theSynchronisationFiresNoTimerEarly() throws {
        let synced = try run(step: 0, syncAt120: true)
        #expect(synced.wet == 180)
        #expect(synced.waspada == 360)
    }
}
