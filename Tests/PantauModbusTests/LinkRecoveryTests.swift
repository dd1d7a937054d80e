import PantauCore
import Testing

@testable import PantauModbus

extension PollerRig {
    static let tcpBus = BusConfig(name: "tcp-1", transport: .tcp(host: "127.0.0.1", port: 1502))
}

/// The events between the failed read at `index` and the next read.
private func after(_ index: Int, in events: [FakeTransport.Event]) -> ArraySlice<FakeTransport.Event> {
    let rest = events[(index + 1)...]
    let next = rest.firstIndex { if case .read = $0 { true } else { false } } ?? events.endIndex
    return events[(index + 1)..<next]
}

private func failedReadIndices(_ events: [FakeTransport.Event]) -> [Int] {
    events.indices.filter { if case .read(_, _, _, _, false) = events[$0] { true } else { false } }
}

@Suite struct LinkRecoveryTests {
    @Test func rulesAsAStateMachine() {
        var tcp = LinkRecovery(isTCP: true)
        #expect(tcp.record(.timeout) == .flush)
        #expect(tcp.record(.timeout) == .reconnect)
        #expect(tcp.record(.timeout) == .flush)
        #expect(tcp.record(.illegalAddress) == .none)
        #expect(tcp.record(.timeout) == .flush)
        #expect(tcp.record(nil) == .none)
        #expect(tcp.record(.timeout) == .flush)
        #expect(tcp.record(.badData) == .reconnect)
        #expect(tcp.record(.timeout) == .flush)

        var rtu = LinkRecovery(isTCP: false)
        #expect((0..<5).map { _ in rtu.record(.timeout) } == Array(repeating: .flush, count: 5))
        #expect(rtu.record(.badData) == .flush)
        #expect(rtu.record(.badCRC) == .flush)
    }

    @Test func aTCPPeerThatStopsAnsweringIsReopenedAfterTwoTimeoutsInARow() {
        let rig = PollerRig(bus: PollerRig.tcpBus, devices: [device("awlr", unit: 1, every: 1)])
        rig.transport.set(unit: 1, .silent)

        rig.run(seconds: 30)

        let events = rig.transport.events
        let failed = failedReadIndices(events)
        #expect(failed.count >= 10)
        // The reopening happens before the next read: the last failure has none yet.
        for (n, index) in failed.dropLast().enumerated() {
            let between = after(index, in: events)
            if n % 2 == 1 {
                let close = between.firstIndex(of: .close)
                let connect = between.firstIndex(of: .connect)
                #expect(close != nil && connect != nil && close! < connect!, "after failed read \(n + 1)")
            } else {
                #expect(!between.contains(.close), "after failed read \(n + 1)")
                #expect(between.contains(.flush), "after failed read \(n + 1)")
            }
        }
    }

    @Test func anInvalidTCPReplyReopensTheConnectionAtOnceAndIsNeverAReading() {
        let rig = PollerRig(bus: PollerRig.tcpBus, devices: [device("awlr", unit: 1, every: 1)])
        rig.transport.set(unit: 1, .garbage)

        rig.run(seconds: 10)

        let events = rig.transport.events
        let failed = failedReadIndices(events)
        #expect(failed.count >= 5)
        for index in failed.dropLast() {
            let between = after(index, in: events)
            #expect(between.contains(.close) && between.contains(.connect), "after event \(index)")
        }
        let polls = rig.recorder.polls(of: "awlr")
        #expect(polls.allSatisfy { $0.readings.allSatisfy { $0.quality != .good && $0.value == nil } })
        #expect(polls.allSatisfy { $0.modbusError?.description.contains("MBAP length field 65535") == true })
        #expect(rig.recorder.availability(of: "awlr") == [false])
        let stats = rig.poller.snapshot()
        #expect(stats.otherErrors == failed.count)
        #expect(stats.devices[0].online == false)
    }

    @Test func anInvalidRTUFrameFlushesTheLineButKeepsThePortOpen() {
        let rig = PollerRig(devices: [device("awlr", unit: 1, every: 1)])
        rig.transport.set(unit: 1, .garbage)

        rig.run(seconds: 10)

        let events = rig.transport.events
        #expect(!events.contains(.close))
        for index in failedReadIndices(events) {
            #expect(after(index, in: events).contains(.flush))
        }
    }

    @Test func aDeviceThatComesBackAfterItsConnectionWasRefusedIsReadWithinFivePollIntervals() {
        let rig = PollerRig(bus: PollerRig.tcpBus, devices: [device("awlr", unit: 1, every: 1)])
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 77])))
        rig.transport.failNextConnects(1_000_000)
        rig.run(seconds: 600)
        #expect(rig.recorder.availability(of: "awlr") == [false])

        rig.transport.failNextConnects(0)
        let back = rig.clock.now()
        var slots = 0
        while rig.recorder.polls(of: "awlr").last?.error != nil, slots < 100 {
            rig.run(seconds: 1)
            slots += 1
        }
        #expect(slots <= 5)
        #expect(rig.recorder.polls(of: "awlr").last?.readings.first?.value == .number(77))
        #expect(rig.recorder.availability(of: "awlr") == [false, true])
        #expect(rig.clock.now() - back <= 5000)
    }

    @Test func aFloodAlertIntervalHoldsWhileTheDeviceIsOffline() {
        let rig = PollerRig(bus: PollerRig.tcpBus, devices: [device("awlr", unit: 1, every: 10)])
        rig.transport.set(unit: 1, .silent)
        rig.run(seconds: 120)
        #expect(rig.recorder.availability(of: "awlr") == [false])

        rig.poller.setPollInterval(device: "awlr", .seconds(1))
        let from = rig.recorder.polls(of: "awlr").count
        rig.run(seconds: 60)

        let probes = rig.recorder.polls(of: "awlr").dropFirst(from).map(\.acquiredAt)
        let gaps = zip(probes.dropFirst(), probes).map { $0 - $1 }
        #expect(probes.count >= 55)
        #expect(gaps.allSatisfy { $0 == 1000 })
        #expect(rig.poller.snapshot().devices[0].interval == .seconds(1))

        // Back at the alert's interval: read at the next probe.
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 5])))
        let before = rig.recorder.polls(of: "awlr").count
        rig.run(seconds: 1)
        #expect(rig.recorder.polls(of: "awlr").dropFirst(before).first?.error == nil)
        #expect(rig.recorder.availability(of: "awlr") == [false, true])
    }

    @Test func aFloodAlertShortensTheConnectionRetryToo() {
        let rig = PollerRig(bus: PollerRig.tcpBus, devices: [device("awlr", unit: 1, every: 10)])
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 77])))
        rig.transport.failNextConnects(1_000_000)
        rig.run(seconds: 600)
        rig.poller.setPollInterval(device: "awlr", .seconds(1))
        rig.run(seconds: 5)
        rig.transport.failNextConnects(0)
        let before = rig.recorder.polls(of: "awlr").count
        rig.run(seconds: 2)
        #expect(rig.recorder.polls(of: "awlr").dropFirst(before).contains { $0.error == nil })
    }
}

@Suite struct OverrunTests {
    /// A first poll at start is off the slot grid: due 1234, interval 1 s, the next slot is 2000. Finishing at
    /// 2100 loses that slot by 100 ms (the old formula, finished - due - interval, said -134).
    @Test(arguments: [
        (Int64(1234), Int64(2100), Int64?(100)), (1234, 1999, nil), (1000, 1999, nil), (1000, 2000, 0),
        (1000, 2001, 1), (1000, 3500, 1500), (1999, 2000, 0), (1999, 2001, 1),
    ])
    func lateIsMeasuredFromTheLostSlotAndNeverNegative(due: Int64, finished: Int64, late: Int64?) {
        #expect(BusWorker.overrun(due: due, finished: finished, every: .seconds(1)) == late)
    }
}
