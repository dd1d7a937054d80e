import PantauCore
import Synchronization
import Testing

@testable import PantauModbus

/// Remote commands on the bus thread: read-now through the normal poll path, temporary poll intervals that revert,
/// and writes refused by links that cannot write (the fake transport, like UART and SDI-12).
@Suite struct BusRequestTests {
    @Test func readNowPollsAtOnceAndHandsThePollBack() {
        let rig = PollerRig(devices: [device("lvl", unit: 3, every: 3600)])
        rig.transport.set(unit: 3, .answers(image(.holding, [0: 42])))
        _ = rig.worker.runDue()
        let got = Mutex<[DevicePoll?]>([])
        rig.poller.submit(.readNow(device: "lvl") { poll in got.withLock { $0.append(poll) } })
        rig.poller.submit(.readNow(device: "nope") { poll in got.withLock { $0.append(poll) } })
        _ = rig.worker.runDue()
        let polls = got.withLock { $0 }
        #expect(polls.count == 2)
        #expect(polls[0]?.readings.first?.value == .number(42))
        #expect(polls[1] == nil)
        // The read went through the normal path too: two polls published, the start's and the command's.
        #expect(rig.recorder.polls(of: "lvl").count == 2)
    }

    @Test func aTemporaryIntervalHoldsUntilItsTimeThenReverts() {
        let rig = PollerRig(devices: [device("lvl", unit: 3, every: 60)])
        rig.transport.set(unit: 3, .answers(image(.holding, [0: 1])))
        rig.run(seconds: 1)
        #expect(rig.recorder.polls(of: "lvl").count == 1)
        let set = rig.clock.now()
        let until = set + 10_000
        rig.poller.setTemporaryPollInterval(device: "lvl", .seconds(1), until: until)
        rig.run(seconds: 70)
        let times = rig.recorder.polls(of: "lvl").map(\.acquiredAt).filter { $0 > set }
        let during = times.filter { $0 <= until }
        // Every second while it holds (on the 1 s grid), then on the configured 60 s grid again.
        #expect(during.count == 10)
        #expect(zip(during, during.dropFirst()).allSatisfy { $1 - $0 == 1000 })
        #expect(times.filter { $0 > until } == [BusWorker.slot(after: until, every: .seconds(60))])
    }

    @Test func aLinkThatCannotWriteRefusesTheWrite() {
        let rig = PollerRig(devices: [device("lvl", unit: 3)])
        rig.transport.set(unit: 3, .answers(image(.holding, [0: 1])))
        let outcome = Mutex<Result<[UInt16], ModbusError>?>(nil)
        rig.poller.submit(
            .write(device: "lvl", table: .holding, address: 0, words: [7]) { r in
                outcome.withLock { $0 = r }
            })
        _ = rig.worker.runDue()
        guard case .failure(let error)? = outcome.withLock({ $0 }) else {
            Issue.record("the write was not refused")
            return
        }
        #expect(error.code == .illegalFunction)
        #expect(error.description.contains("cannot write"))
    }

    /// A DTU forwards writes like any RTU master: the bus thread's write goes out as FC6 and is read back.
    @Test func aWriteOnAnRTUOverTCPBusReachesTheDevice() throws {
        let dtu = try DTURig([
            [
                .chunks([RTUFraming.frame(unit: 3, pdu: [0x06, 0x00, 0x0A, 0x00, 0x07])]),
                .chunks([RTUFraming.frame(unit: 3, pdu: [0x03, 0x02, 0x00, 0x07])]),
                // The device's first poll, due at the same turn.
                .chunks([RTUFraming.frame(unit: 3, pdu: [0x03, 0x02, 0x00, 0x01])]),
            ]
        ])
        defer { dtu.stop() }
        let (poller, worker) = dtuPoller(dtu)
        let outcome = Mutex<Result<[UInt16], ModbusError>?>(nil)
        poller.submit(
            .write(device: "lvl", table: .holding, address: 10, words: [7]) { r in outcome.withLock { $0 = r } })
        _ = worker.runDue()
        #expect(outcome.withLock { $0 } == .success([7]))
        #expect(
            Array(dtu.allRequests.prefix(2)) == [
                RTUFraming.frame(unit: 3, pdu: [0x06, 0x00, 0x0A, 0x00, 0x07]),
                RTUFraming.frame(unit: 3, pdu: [0x03, 0x00, 0x0A, 0x00, 0x01]),
            ])
    }

    /// A write and its read-back are bus transactions like any read: counted, timed, announced to the watchdog
    /// (a queue of writes to a silent device must not look like a stuck bus thread).
    @Test func writesAndReadBacksAreBusTransactions() throws {
        let dtu = try DTURig([
            [
                .chunks([RTUFraming.frame(unit: 3, pdu: [0x03, 0x02, 0x00, 0x01])]),
                .chunks([RTUFraming.frame(unit: 3, pdu: [0x06, 0x00, 0x0A, 0x00, 0x07])]),
                .chunks([RTUFraming.frame(unit: 3, pdu: [0x03, 0x02, 0x00, 0x07])]),
                .silence,
            ]
        ])
        defer { dtu.stop() }
        let (poller, worker) = dtuPoller(dtu)
        _ = worker.runDue()
        #expect(poller.snapshot().transactions == 1)
        let outcomes = Mutex<[Result<[UInt16], ModbusError>]>([])
        for _ in 0..<2 {
            poller.submit(
                .write(device: "lvl", table: .holding, address: 10, words: [7]) { r in
                    outcomes.withLock { $0.append(r) }
                })
        }
        _ = worker.runDue()
        let got = outcomes.withLock { $0 }
        #expect(got.first == .success([7]))
        guard case .failure(let error)? = got.last else {
            Issue.record("the write to a silent device did not fail: \(got)")
            return
        }
        #expect(error.code == .timeout)
        let stats = poller.snapshot()
        #expect(stats.transactions == 4)
        #expect(stats.timeouts == 1)
    }
}

/// A poller on a bus behind a scripted DTU, driven step by step without its thread; one device `lvl`, unit 3,
/// polled hourly (only its first poll falls due).
private func dtuPoller(_ dtu: DTURig) -> (BusPoller, BusWorker) {
    nonisolated(unsafe) let transport = dtu.transport
    let bus = BusConfig(name: "dtu-test", transport: .rtuOverTCP(RTUOverTCPSettings(host: "dtu", port: 4001)))
    let poller = BusPoller(
        bus: bus, devices: [device("lvl", unit: 3, every: 3600)], clock: FakeClock(), logger: quietLogger,
        transportFactory: { _ in transport }, codec: testCodec, pause: { _ in }, onPoll: { _ in },
        onAvailability: { _, _, _ in })
    return (poller, BusWorker(poller: poller))
}
