import PantauCore
import PantauPlatform
import Testing

@testable import PantauModbus

extension DevicePoll {
    /// The error the bus handed over, still typed.
    var modbusError: ModbusError? { error as? ModbusError }
}

/// A poller on a fake transport and a fake clock, driven step by step without its thread.
struct PollerRig {
    let clock = FakeClock()
    let transport: FakeTransport
    let recorder = PollRecorder()
    let poller: BusPoller
    let worker: BusWorker

    init(bus: BusConfig = PollerRig.rtuBus, devices: [DeviceConfig], readCostMicros: Int = 20_000) {
        let clock = self.clock
        let transport = FakeTransport(clock: clock, readCostMicros: readCostMicros)
        let recorder = self.recorder
        self.transport = transport
        poller = BusPoller(
            bus: bus, devices: devices, clock: clock, logger: quietLogger,
            transportFactory: { _ in transport }, codec: testCodec,
            pause: { micros in
                transport.log(.pause(micros: micros))
                clock.advance(micros: micros)
            },
            onPoll: { recorder.record($0) }, onAvailability: { recorder.record($0, $1, $2) })
        worker = BusWorker(poller: poller)
    }

    static let rtuBus = BusConfig(
        name: "rs485-1", transport: .rtu(RTUSettings(device: "/dev/ttyX", serial: SerialSettings(baud: 9600))))

    /// Runs the bus until `seconds` of fake time have passed.
    func run(seconds: Int64) {
        let end = clock.now() + seconds * 1000
        while clock.now() < end {
            let next = worker.runDue()
            if next > clock.now() { clock.advance(ms: min(next, end) - clock.now()) }
        }
    }
}

func device(
    _ name: String, unit: Int, every seconds: Int64 = 10, points: [(String, RegisterTable, Int)] = [("a", .holding, 0)],
    timing: ProfileTiming = ProfileTiming(responseTimeoutMs: 500, retries: 1)
) -> DeviceConfig {
    DeviceConfig(
        name: name, bus: "rs485-1", unitId: unit, profile: profile(name, points: points, timing: timing),
        pollInterval: .seconds(seconds), timing: timing)
}

func image(_ table: RegisterTable, _ values: [Int: UInt16]) -> RegisterImage { RegisterImage([table: values]) }

@Suite struct BusPollerTests {
    @Test func issuesThePlannedCoalescedRequestsAndDecodesTheReplies() {
        let points: [(String, RegisterTable, Int)] = [
            ("a", .holding, 0), ("b", .holding, 1), ("c", .holding, 10), ("d", .input, 5), ("e", .holding, 40),
        ]
        let aq = device("aq", unit: 7, points: points)
        let rig = PollerRig(devices: [aq])
        var registers = RegisterImage()
        for address in 0...40 { registers[.holding, address] = UInt16(100 + address) }
        registers[.input, 5] = 55
        rig.transport.set(unit: 7, .answers(registers))

        _ = rig.worker.runDue()

        let expected = testCodec.plan(aq.profile.points, aq.timing)
        #expect(expected.count == 3)
        #expect(rig.transport.reads.map(\.request) == expected)
        #expect(rig.transport.reads.allSatisfy { $0.unit == 7 && $0.ok })
        #expect(rig.transport.events.contains(.timeout(500)))
        let poll = rig.recorder.polls(of: "aq")
        #expect(poll.count == 1)
        #expect(poll.first?.error == nil)
        let values = Dictionary(uniqueKeysWithValues: (poll.first?.readings ?? []).map { ($0.point, $0.value) })
        let expectedValues: [String: PointValue?] = [
            "a": .number(100), "b": .number(101), "c": .number(110), "d": .number(55), "e": .number(140),
        ]
        #expect(values == expectedValues)
        #expect(rig.recorder.availability(of: "aq") == [true])
    }

    @Test func silentUnitGoesOfflineOnceWhileItsNeighbourKeepsItsSchedule() {
        let rig = PollerRig(devices: [device("river", unit: 1), device("dead", unit: 2)])
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 321])))
        rig.transport.set(unit: 2, .silent)

        rig.run(seconds: 600)

        let river = rig.recorder.polls(of: "river")
        #expect(river.allSatisfy { $0.error == nil })
        let gaps = zip(river.dropFirst(), river).map { $0.acquiredAt - $1.acquiredAt }
        // The first poll happens at start, the rest on 10 s boundaries, none skipped despite the dead neighbour.
        #expect(gaps.dropFirst().allSatisfy { $0 == 10_000 })
        #expect(river.dropFirst().allSatisfy { $0.acquiredAt % 10_000 == 0 })
        #expect(river.count >= 60)
        #expect(rig.recorder.availability(of: "river") == [true])

        let dead = rig.recorder.polls(of: "dead")
        #expect(dead.allSatisfy { $0.error != nil && $0.readings.allSatisfy { $0.quality == .deviceError } })
        #expect(rig.recorder.availability(of: "dead") == [false])
        let stats = rig.poller.snapshot()
        #expect(stats.devices.first { $0.name == "dead" }?.online == false)
        #expect(stats.devices.first { $0.name == "river" }?.online == true)
        #expect(stats.cycleOverruns == 0)
    }

    @Test func offlineDeviceIsProbedWithOneShortAttemptAtDoublingIntervalsCappedAtFiveSeconds() {
        let fast = ProfileTiming(responseTimeoutMs: 100, retries: 1)
        let rig = PollerRig(devices: [device("dead", unit: 2, every: 1, timing: fast)])
        rig.transport.set(unit: 2, .silent)

        rig.run(seconds: 600)

        let polls = rig.recorder.polls(of: "dead").map(\.acquiredAt)
        let gaps = zip(polls.dropFirst(), polls).map { ($0 - $1) / 1000 }
        // Three normal polls, then probes 2 and 4 s apart, then never more than max(1 s, 5 s) apart.
        #expect(Array(gaps.prefix(4)) == [1, 1, 2, 4])
        #expect(gaps.allSatisfy { $0 <= 5 })
        #expect(gaps.suffix(100).allSatisfy { $0 == 5 })
        let attemptsPerPoll = rig.transport.reads.count
        // 3 polls x (1 + 1 retry) before offline, then one attempt per probe.
        #expect(attemptsPerPoll == 3 * 2 + (polls.count - 3))
        #expect(rig.poller.snapshot().devices.first?.interval == .seconds(5))
    }

    @Test func probesUseTheShortProbeTimeout() {
        let rig = PollerRig(devices: [device("dead", unit: 2)])
        rig.transport.set(unit: 2, .silent)
        rig.run(seconds: 100)
        #expect(rig.transport.events.contains(.timeout(300)))
    }

    @Test(arguments: [(Int64(60), Int64(60)), (Int64(10), Int64(10)), (Int64(1), Int64(5)), (Int64(2), Int64(5))])
    func backoffIsCappedAtThePollIntervalOrFiveSeconds(interval: Int64, cap: Int64) {
        let rig = PollerRig(devices: [device("dead", unit: 2, every: interval)])
        rig.transport.set(unit: 2, .silent)

        rig.run(seconds: interval * 3 + 3 * 3600)

        #expect(rig.poller.snapshot().devices.first?.interval == .seconds(cap))
    }

    @Test func firstGoodProbeBringsTheDeviceBackOnlineAtItsInterval() {
        let rig = PollerRig(devices: [device("gauge", unit: 3)])
        rig.transport.set(unit: 3, .silent)
        rig.run(seconds: 200)
        #expect(rig.recorder.availability(of: "gauge") == [false])

        rig.transport.set(unit: 3, .answers(image(.holding, [0: 42])))
        rig.run(seconds: 400)

        #expect(rig.recorder.availability(of: "gauge") == [false, true])
        #expect(rig.recorder.polls(of: "gauge").last?.readings.first?.value == .number(42))
        let stats = rig.poller.snapshot().devices[0]
        #expect(stats.online == true)
        #expect(stats.interval == .seconds(10))
        #expect(stats.consecutiveErrors == 0)
        #expect(stats.errorsTotal >= 3)
    }

    @Test(arguments: [(3, 4_000_000, true), (3, 1_000_000, false)])
    func overrunsAreCountedWhenPollsOutlastTheInterval(devices: Int, readCostMicros: Int, overruns: Bool) {
        let configs = (1...devices).map { device("d\($0)", unit: $0) }
        let rig = PollerRig(devices: configs, readCostMicros: readCostMicros)
        for unit in 1...devices { rig.transport.set(unit: unit, .answers(image(.holding, [0: 1]))) }

        rig.run(seconds: 120)

        let stats = rig.poller.snapshot()
        #expect((stats.cycleOverruns > 0) == overruns)
        #expect(stats.utilisation > 0 && stats.utilisation <= 1)
        #expect(stats.meanResponseMs == Double(readCostMicros) / 1000)
    }

    @Test func afterATimeoutTheLineStaysQuietForT35AndIsFlushedBeforeTheNextRequest() {
        let t35 = SerialSettings(baud: 9600).interFrameSilenceMicros
        let rig = PollerRig(devices: [device("dead", unit: 2), device("alive", unit: 1)])
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 1])))
        rig.transport.set(unit: 2, .silent)

        rig.run(seconds: 30)

        let events = rig.transport.events
        var checked = 0
        for (index, event) in events.enumerated() {
            guard case .read(_, _, _, _, false) = event else { continue }
            let rest = events[(index + 1)...]
            let nextRead = rest.firstIndex { if case .read = $0 { true } else { false } } ?? events.endIndex
            let between = events[(index + 1)..<nextRead]
            let pauseIndex = between.firstIndex { if case .pause(let m) = $0 { m >= t35 } else { false } }
            let flushIndex = between.firstIndex(of: .flush)
            #expect(pauseIndex != nil && flushIndex != nil && pauseIndex! < flushIndex!, "after event \(index)")
            checked += 1
        }
        #expect(checked >= 6)
        // Every frame, failed or not, is separated from the previous one by at least t3.5.
        let reads = rig.transport.reads
        for (previous, next) in zip(reads, reads.dropFirst()) {
            #expect(next.start - previous.end >= UInt64(t35) * 1000)
        }
        #expect(rig.poller.snapshot().timeouts == reads.filter { !$0.ok }.count)
    }

    @Test func interRequestDelayIsAddedToTheSilence() {
        let timing = ProfileTiming(interRequestDelayMs: 50)
        let slow = device("slow", unit: 1, points: [("a", .holding, 0), ("b", .input, 0)], timing: timing)
        let rig = PollerRig(devices: [slow])
        rig.transport.set(unit: 1, .answers(RegisterImage([.holding: [0: 1], .input: [0: 2]])))

        _ = rig.worker.runDue()

        let reads = rig.transport.reads
        #expect(reads.count == 2)
        let silence = UInt64(SerialSettings(baud: 9600).interFrameSilenceMicros + 50_000) * 1000
        #expect(reads[1].start - reads[0].end >= silence)
    }

    @Test func exceptionReplyIsADeviceErrorWithThePlaceButTheDeviceStaysOnline() {
        let points: [(String, RegisterTable, Int)] = [("level", .holding, 0), ("missing", .holding, 50)]
        let rig = PollerRig(devices: [device("awlr", unit: 4, points: points)])
        rig.transport.set(unit: 4, .answers(image(.holding, [0: 250])))

        rig.run(seconds: 35)

        let polls = rig.recorder.polls(of: "awlr")
        #expect(polls.count == 4)
        let first = polls[0]
        #expect(first.modbusError?.code == .illegalAddress)
        #expect(first.modbusError?.place == "bus rs485-1 unit 4 holding 50+1")
        #expect(first.readings.first { $0.point == "level" }?.value == .number(250))
        #expect(first.readings.first { $0.point == "missing" }?.quality == .deviceError)
        // An exception is an answer, so it is not retried and the device is not declared offline.
        #expect(rig.transport.reads.count == 2 * polls.count)
        #expect(rig.recorder.availability(of: "awlr") == [true])
        #expect(rig.poller.snapshot().devices[0].consecutiveErrors == 4)
    }

    @Test func connectionFailuresReopenWithBackoff() {
        let rig = PollerRig(devices: [device("aq", unit: 1, every: 1)])
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 9])))
        rig.transport.failNextConnects(3)

        rig.run(seconds: 20)

        let connects = rig.transport.events.filter { $0 == .connect }.count
        // A retry after each failed attempt (backoff capped by the 1 s device's probe interval), then connected.
        #expect(connects == 4)
        let polls = rig.recorder.polls(of: "aq")
        #expect(polls.prefix(3).allSatisfy { $0.error != nil })
        #expect(polls.last?.error == nil)
        #expect(rig.poller.snapshot().connected)
    }

    @Test func droppedConnectionIsClosedAndReopened() {
        let rig = PollerRig(devices: [device("aq", unit: 1, every: 1)])
        rig.transport.set(unit: 1, .dropsConnection)
        rig.run(seconds: 3)
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 9])))
        rig.run(seconds: 10)

        let events = rig.transport.events
        let firstClose = events.firstIndex(of: .close)
        #expect(firstClose != nil)
        #expect(events[(firstClose ?? 0)...].contains(.connect))
        #expect(rig.recorder.polls(of: "aq").last?.error == nil)
    }

    @Test func shorterIntervalTakesEffectBeforeTheOldDueTime() {
        let rig = PollerRig(devices: [device("awlr", unit: 1, every: 300)])
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 1])))
        _ = rig.worker.runDue()
        rig.poller.setPollInterval(device: "awlr", .seconds(10))

        rig.run(seconds: 60)

        #expect(rig.recorder.polls(of: "awlr").count >= 6)
        #expect(rig.poller.snapshot().devices[0].interval == .seconds(10))

        rig.poller.setPollInterval(device: "awlr", nil)
        #expect(rig.poller.snapshot().devices[0].interval == .seconds(300))
    }

    @Test func updatedDevicesKeepTheirHealthAndNewOnesArePolled() {
        let rig = PollerRig(devices: [device("a", unit: 1)])
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 1])))
        rig.transport.set(unit: 2, .answers(image(.holding, [0: 2])))
        rig.run(seconds: 25)
        rig.poller.updateDevices([device("a", unit: 1), device("b", unit: 2)])
        rig.run(seconds: 25)

        let stats = rig.poller.snapshot().devices
        #expect(stats.map(\.name) == ["a", "b"])
        #expect(stats[0].polls > stats[1].polls)
        #expect(stats[1].online == true)
    }

    @Test func threadPollsAndStopsWithTheSystemClock() throws {
        let clock = SystemClock()
        let fakeClock = FakeClock()
        let transport = FakeTransport(clock: fakeClock, readCostMicros: 0)
        transport.set(unit: 1, .answers(image(.holding, [0: 5])))
        let recorder = PollRecorder()
        let poller = BusPoller(
            bus: PollerRig.rtuBus, devices: [device("a", unit: 1, every: 1)], clock: clock, logger: quietLogger,
            transportFactory: { _ in transport }, codec: testCodec, onPoll: { recorder.record($0) },
            onAvailability: { recorder.record($0, $1, $2) })
        let before = poller.lastProgressNanos
        poller.start()
        let deadline = clock.monotonicNanos() + 10_000_000_000
        while recorder.polls.isEmpty && clock.monotonicNanos() < deadline { sleepMicros(10_000) }
        poller.stop()

        #expect(recorder.polls.first?.readings.first?.value == .number(5))
        #expect(poller.lastProgressNanos > before)
        #expect(transport.events.last == .close)
    }
}
