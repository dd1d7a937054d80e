import Logging
import PantauCore
import PantauPlatform
import Synchronization
import Testing

@testable import PantauGateway

/// A monotonic clock the test moves by hand.
private final class ManualClock: GatewayClock {
    private let nanos = Atomic<UInt64>(1_000_000_000)
    func now() -> UnixMillis { Int64(nanos.load(ordering: .relaxed) / 1_000_000) }
    func monotonicNanos() -> UInt64 { nanos.load(ordering: .relaxed) }
    func advance(seconds: UInt64) { nanos.add(seconds * 1_000_000_000, ordering: .relaxed) }
}

/// A worker's heartbeat as the gateway's threads keep one: an atomic time of the last progress, read as a probe.
private final class ProgressBeacon: Sendable {
    let name: String
    private let clock: any GatewayClock
    private let lastBeat: Atomic<UInt64>

    init(name: String, clock: any GatewayClock = SystemClock()) {
        self.name = name
        self.clock = clock
        lastBeat = Atomic(clock.monotonicNanos())
    }

    func beat() { lastBeat.store(clock.monotonicNanos(), ordering: .relaxed) }
    var lastProgressNanos: UInt64 { lastBeat.load(ordering: .relaxed) }
    var probe: ProgressProbe { ProgressProbe(name: name) { [self] in lastProgressNanos } }
}

@Suite("WatchdogSupervisor")
struct WatchdogSupervisorTests {
    @Test("pings while every bus thread and the publisher beat within the limit")
    func healthyWhenAllBeat() {
        let clock = ManualClock()
        let beacons = ["bus rs485-1", "bus tcp-plant", "publisher"].map { ProgressBeacon(name: $0, clock: clock) }
        let supervisor = WatchdogSupervisor(probes: beacons.map(\.probe), stallLimit: .seconds(20), clock: clock)
        for _ in 0..<10 {
            clock.advance(seconds: 15)
            for beacon in beacons { beacon.beat() }
            #expect(supervisor.verdict() == .healthy)
            #expect(supervisor.shouldPing)
        }
    }

    @Test("a wedged bus thread withholds the ping and is named, the others are not")
    func wedgedBusIsNamed() {
        let clock = ManualClock()
        let bus1 = ProgressBeacon(name: "bus rs485-1", clock: clock)
        let bus2 = ProgressBeacon(name: "bus rs485-2", clock: clock)
        let publisher = ProgressBeacon(name: "publisher", clock: clock)
        let supervisor = WatchdogSupervisor(
            probes: [bus1.probe, bus2.probe, publisher.probe], stallLimit: .seconds(20), clock: clock)

        clock.advance(seconds: 25)
        bus1.beat()
        publisher.beat()
        #expect(supervisor.verdict() == .stalled([StalledProbe(name: "bus rs485-2", silentNanos: 25_000_000_000)]))
        #expect(!supervisor.shouldPing)
        #expect(supervisor.verdict().stalledNames == ["bus rs485-2"])
    }

    @Test(
        "the limit is inclusive: silent for exactly the limit is still progress",
        arguments: [(19, true), (20, true), (21, false)])
    func limitBoundary(silentSeconds: UInt64, pings: Bool) {
        let clock = ManualClock()
        let beacon = ProgressBeacon(name: "publisher", clock: clock)
        let supervisor = WatchdogSupervisor(probes: [beacon.probe], stallLimit: .seconds(20), clock: clock)
        clock.advance(seconds: silentSeconds)
        #expect(supervisor.shouldPing == pings)
    }

    @Test("a probe's own limit overrides the supervisor's")
    func perProbeLimit() {
        let clock = ManualClock()
        let slow = ProgressBeacon(name: "bus slow-9600", clock: clock)
        let fast = ProgressBeacon(name: "publisher", clock: clock)
        let slowProbe = ProgressProbe(name: slow.name, stallLimit: .seconds(60)) { slow.lastProgressNanos }
        let supervisor = WatchdogSupervisor(probes: [slowProbe, fast.probe], stallLimit: .seconds(20), clock: clock)
        clock.advance(seconds: 45)
        fast.beat()
        #expect(supervisor.verdict() == .healthy)
        clock.advance(seconds: 20)
        fast.beat()
        #expect(supervisor.verdict().stalledNames == ["bus slow-9600"])
    }

    @Test("a beat newer than the supervisor's clock read does not count as silence")
    func beatAfterClockRead() {
        let clock = ManualClock()
        let probe = ProgressProbe(name: "publisher") { clock.monotonicNanos() + 1_000 }
        let supervisor = WatchdogSupervisor(probes: [probe], stallLimit: .seconds(1), clock: clock)
        #expect(supervisor.verdict() == .healthy)
    }

    @Test("WATCHDOG=1 stops reaching systemd while a bus is wedged and resumes when it recovers")
    func pingsStopAndResume() throws {
        let clock = ManualClock()
        let bus = ProgressBeacon(name: "bus rs485-1", clock: clock)
        let publisher = ProgressBeacon(name: "publisher", clock: clock)
        let supervisor = WatchdogSupervisor(
            probes: [bus.probe, publisher.probe], stallLimit: .seconds(20), clock: clock)
        let listener = try NotifySocketListener()
        let notifier = SystemdNotifier(socketPath: listener.notifySocket)

        // Ticks every 10 s; the bus wedges after tick 2 and comes back at tick 6.
        var pinged: [Bool] = []
        for tick in 0..<8 {
            clock.advance(seconds: 10)
            publisher.beat()
            if tick < 2 || tick >= 6 { bus.beat() }
            if supervisor.shouldPing { try notifier.watchdog() }
            let arrived = !listener.isEmpty()
            if arrived { #expect(try listener.receive() == "WATCHDOG=1") }
            pinged.append(arrived)
        }
        #expect(pinged == [true, true, true, true, false, false, true, true])
    }

    @Test("the service pings a healthy gateway at the watchdog interval")
    func servicePingsWhenHealthy() async throws {
        let listener = try NotifySocketListener()
        let beacon = ProgressBeacon(name: "publisher")
        let notifier = SystemdNotifier(socketPath: listener.notifySocket, watchdogTimeout: .milliseconds(20))
        let service = WatchdogService(
            probes: { [beacon.probe] }, stallLimit: .seconds(3600), notifier: notifier, logger: Logger(label: "test"))
        let running = Task { try await service.run() }
        defer { running.cancel() }
        #expect(try await listener.nextDatagram() == "WATCHDOG=1")
        #expect(try await listener.nextDatagram() == "WATCHDOG=1")
    }

    @Test("the service names the stalled worker in STATUS instead of pinging")
    func serviceReportsStall() async throws {
        let listener = try NotifySocketListener()
        let clock = ManualClock()
        let bus = ProgressBeacon(name: "bus rs485-1", clock: clock)
        clock.advance(seconds: 60)
        let notifier = SystemdNotifier(socketPath: listener.notifySocket, watchdogTimeout: .milliseconds(20))
        let service = WatchdogService(
            probes: { [bus.probe] }, stallLimit: .seconds(20), clock: clock, notifier: notifier,
            logger: Logger(label: "test"))
        let running = Task { try await service.run() }
        defer { running.cancel() }
        #expect(try await listener.nextDatagram() == "STATUS=stalled: bus rs485-1")
    }
}
