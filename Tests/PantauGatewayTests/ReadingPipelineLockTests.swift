import Dispatch
import Logging
import PantauCore
import PantauPlatform
import Synchronization
import Testing

@testable import PantauGateway

private final class CountingSink: MessageSink {
    let devices = Mutex<[String]>([])
    let arrived = DispatchSemaphore(value: 0)
    func append(_ m: [OutboundMessage]) {
        devices.withLock { $0 += m.compactMap(\.device) }
        arrived.signal()
    }
}

private final class FixedClock: GatewayClock {
    func now() -> UnixMillis { 1_800_000_000_000 }
    func monotonicNanos() -> UInt64 { 1 }
}

@Suite("Pipeline: no lock shared between devices on the hot path")
struct ReadingPipelineLockTests {
    let profile = DeviceProfile(
        id: "th",
        points: [
            PointSpec(name: "temp", quantity: "temperature", table: .holding, address: 0, type: .i16, unit: "Cel")
        ])

    func config() -> GatewayConfig {
        let devices = ["a", "b"].map { name in
            DeviceConfig(name: name, bus: "bus-\(name)", unitId: 1, profile: profile, pollInterval: .seconds(1))
        }
        return GatewayConfig(
            identity: GatewayIdentity(site: "s", id: "g"),
            buses: ["a", "b"].map { BusConfig(name: "bus-\($0)", transport: .tcp(host: "h\($0)", port: 502)) },
            devices: devices, mqtt: MQTTConfig(brokers: [.init(host: "h", port: 1883)], clientId: "c"))
    }

    /// With one lock for every device (as before), the poll of `a` would wait for `b`'s lock until the test gave
    /// up; the 10 s wait only detects that hang.
    @Test("a poll of one device is handled while another device's state is locked")
    func independentDevices() {
        let sink = CountingSink()
        let pipeline = ReadingPipeline(
            config: config(), sink: sink, clock: FixedClock(), logger: Logger(label: "t"), onPollInterval: { _, _ in })
        let reading = Reading(
            device: "a", point: "temp", quantity: "temperature", unit: "Cel", value: .number(21.5), quality: .good,
            acquiredAt: 1_800_000_000_000)
        let handled = pipeline.whileHolding(device: "b") { () -> Bool in
            let bus = OwnedThread {
                pipeline.handle(
                    DevicePoll(device: "a", readings: [reading], error: nil, acquiredAt: reading.acquiredAt))
            }
            let done = sink.arrived.wait(timeout: .now() + .seconds(10)) == .success
            // A poll stuck behind the lock finishes once it is released; joining here would never return.
            if done { bus.join() } else { bus.detach() }
            return done
        }
        #expect(handled == true)
        #expect(sink.devices.withLock { $0 } == ["a"])
    }
}
