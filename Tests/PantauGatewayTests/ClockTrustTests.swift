import Foundation
import Logging
import PantauCore
import Synchronization
import Testing

@testable import PantauGateway

final class ClockTrustSink: MessageSink {
    let messages = Mutex<[OutboundMessage]>([])
    func append(_ m: [OutboundMessage]) { messages.withLock { $0 += m } }
    var all: [OutboundMessage] { messages.withLock { $0 } }
    /// What the journal does with the pipeline's correction request (`Journal.correctTimes`) to the telemetry it
    /// holds; everything else counts as published already (a broker always reachable).
    func correct(_ request: ReadingPipeline.TimeCorrectionRequest?) {
        guard let request else { return }
        messages.withLock { all in
            all = all.map { m in
                guard m.stamp?.quality == .held else { return m }
                return TimeCorrection.corrected(m, bootId: request.bootId, offset: request.offset) ?? m
            }
        }
    }
    /// What a publisher could send: everything but telemetry still held.
    var publishable: [OutboundMessage] { all.filter { $0.stamp?.quality != .held } }
}

/// A board without an RTC: boottime runs; the wall clock is boottime plus whatever offset it was set to.
final class ClockTrustBoard: GatewayClock {
    struct State {
        var boottime: Int64 = 0
        var wallOffset: Int64 = 0
        var synced = false
        var bootId = "boot-1"
    }
    let state = Mutex(State())
    func now() -> UnixMillis { state.withLock { $0.boottime + $0.wallOffset } }
    func monotonicNanos() -> UInt64 { UInt64(state.withLock { $0.boottime }) * 1_000_000 }
    func clockSample() -> ClockSample {
        state.withLock { s in
            ClockSample(wall: s.boottime + s.wallOffset, boottimeMs: s.boottime, synced: s.synced, bootId: s.bootId)
        }
    }
    func set(_ change: (inout State) -> Void) { state.withLock { change(&$0) } }
    /// The time service answers at `boottime`: the wall clock is set to the true time and marked synchronised.
    func synchronise(atBoottime boottime: Int64) {
        set { s in
            s.boottime = boottime
            s.wallOffset = ClockTrustTests.trueBoot
            s.synced = true
        }
    }
}

/// Issue 14: readings acquired while the clock is unsynchronised are never published with a wrong date.
@Suite struct ClockTrustTests {
    /// The true time at boottime 0: 2026-12-06 00:00:00 UTC.
    static let trueBoot: Int64 = 1_796_515_200_000

    let profile = DeviceProfile(
        id: "lvl",
        points: [
            PointSpec(name: "level", quantity: "water_level", table: .holding, address: 0, type: .i16, unit: "cm")
        ])

    func config(_ policy: UnsyncedTimePolicy) -> GatewayConfig {
        let device = DeviceConfig(name: "river", bus: "b", unitId: 1, profile: profile, pollInterval: .seconds(60))
        var c = GatewayConfig(
            identity: GatewayIdentity(site: "s", id: "g"),
            buses: [BusConfig(name: "b", transport: .tcp(host: "h", port: 502))], devices: [device],
            mqtt: MQTTConfig(brokers: [.init(host: "h", port: 1883)], clientId: "c"),
            aggregation: AggregationConfig(windows: [.minutes(1), .minutes(15)]))
        c.unsyncedTime = policy
        return c
    }

    /// A pipeline of `config` on `clock`, delivering to `sink`.
    static func pipeline(
        _ config: GatewayConfig, _ sink: MessageSink, _ clock: GatewayClock, logger: Logger = Logger(label: "t")
    ) -> ReadingPipeline {
        ReadingPipeline(config: config, sink: sink, clock: clock, logger: logger, onPollInterval: { _, _ in })
    }

    /// A poll of one good reading acquired at `t` (by default the river's level).
    static func poll(
        _ value: Double, at t: UnixMillis, device: String = "river", point: String = "level",
        quantity: String = "water_level", unit: String = "cm"
    ) -> DevicePoll {
        DevicePoll(
            device: device,
            readings: [
                Reading(
                    device: device, point: point, quantity: quantity, unit: unit, value: .number(value),
                    quality: .good, acquiredAt: t)
            ], error: nil, acquiredAt: t)
    }

    /// Polls at boottime 60 s, 120 s, ... 600 s; `steps` moves the wall clock before a poll (boottime -> offset).
    func run(
        _ policy: UnsyncedTimePolicy, steps: [Int64: Int64], syncAt: Int64 = 630_000, restartAfter: Int64? = nil
    ) -> (ClockTrustSink, ReadingPipeline, ClockTrustBoard) {
        let board = ClockTrustBoard()
        let sink = ClockTrustSink()
        var pipeline = Self.pipeline(config(policy), sink, board)
        for i in 1...10 {
            if let restart = restartAfter, Int64(i) * 60_000 == restart + 60_000 {
                // The process restarts (same boot): its state saved and restored, as the gateway does.
                let saved = pipeline.snapshot()
                pipeline = Self.pipeline(config(policy), sink, board)
                pipeline.restore(saved)
            }
            let boottime = Int64(i) * 60_000
            board.set { s in
                s.boottime = boottime
                if let offset = steps[boottime] { s.wallOffset = offset }
            }
            let t = board.now()
            pipeline.handle(Self.poll(Double(100 + i), at: t))
            pipeline.tick()
            sink.correct(pipeline.takeTimeCorrection())
        }
        board.synchronise(atBoottime: syncAt)
        pipeline.tick()
        sink.correct(pipeline.takeTimeCorrection())
        return (sink, pipeline, board)
    }

    func json(_ m: OutboundMessage) throws -> [String: Any] {
        let any = try JSONSerialization.jsonObject(with: Data(m.body))
        if let pack = any as? [[String: Any]] { return try #require(pack.first) }
        return try #require(any as? [String: Any])
    }

    /// Boot at 1970, run unsynchronised through a backward and a forward step, then synchronise: every telemetry
    /// time published is the true acquisition time, marked `corrected`.
    @Test func heldTelemetryIsPublishedWithTrueTimesAfterSync() throws {
        let steps: [Int64: Int64] = [240_000: -100_000, 420_000: 3_600_000]
        let (sink, pipeline, _) = run(.hold, steps: steps)
        let telemetry = sink.all.filter { $0.kind == .telemetry }
        #expect(telemetry.count == 10)
        for (i, m) in telemetry.enumerated() {
            let first = try json(m)
            let bt = try #require(first["bt"] as? Double)
            #expect(Int64((bt * 1000).rounded()) == Self.trueBoot + Int64(i + 1) * 60_000)
            #expect(m.acquiredAt == Self.trueBoot + Int64(i + 1) * 60_000)
            #expect(first["tq"] as? String == "corrected")
            #expect(first["v"] as? Double == Double(101 + i))
        }
        let status = pipeline.clockStatus()
        #expect(status.synced && status.held == 0 && status.released == 10 && status.stepsSeen == 3)
        // Nothing else left the pipeline unmarked while the clock was wrong.
        for m in sink.all where m.kind != .telemetry && m.acquiredAt < Self.trueBoot {
            #expect(try json(m)["tq"] as? String == "unsynced")
        }
    }

    /// Before synchronisation nothing with a time goes out as telemetry under `hold`: it is journaled held, with
    /// the boottime its correction needs.
    @Test func holdPublishesNoTelemetryWhileUnsynced() throws {
        let board = ClockTrustBoard()
        let sink = ClockTrustSink()
        let pipeline = Self.pipeline(config(.hold), sink, board)
        board.set { $0.boottime = 60_000 }
        pipeline.handle(Self.poll(1, at: 60_000))
        sink.correct(pipeline.takeTimeCorrection())
        #expect(sink.publishable.filter { $0.kind == .telemetry }.isEmpty)
        let held = try #require(sink.all.first { $0.kind == .telemetry })
        #expect(held.stamp == ClockStamp(bootId: "boot-1", boottimeMs: 60_000, quality: .held))
        #expect(try json(held)["tq"] as? String == "unsynced")
        #expect(pipeline.clockStatus().held == 1)
    }

    /// A wall-clock step while unsynchronised neither creates nor loses a window: the aggregates are exactly those
    /// of the same run without steps.
    @Test func stepsDoNotCreateOrLoseWindows() throws {
        let (stepped, _, _) = run(.hold, steps: [240_000: -100_000, 420_000: 3_600_000])
        let (steady, _, _) = run(.hold, steps: [:])
        let a = stepped.all.filter { $0.kind == .aggregate }
        let b = steady.all.filter { $0.kind == .aggregate }
        // Ten 1-minute windows [60 s, 120 s) ... [600 s, 660 s) and the 15-minute [0, 900 s). Those still open at
        // the synchronisation (the last two 1-minute ones, in their grace period, and the 15-minute one) close at the
        // jump with what they hold and go out with their true times, `corrected`; the others went out before, on the
        // boottime timeline, marked `unsynced`.
        #expect(a.count == 11)
        #expect(a.map(\.body) == b.map(\.body))
        let oneMinute = try a.filter { try json($0)["window"] as? String == "1m" }
        let starts = try oneMinute.map { try #require(try json($0)["start"] as? Int64) }
        #expect(starts == (1...8).map { Int64($0) * 60_000 } + [Self.trueBoot + 540_000, Self.trueBoot + 600_000])
        #expect(
            try a.map { try json($0)["tq"] as? String } == Array(repeating: "unsynced", count: 8)
                + Array(repeating: "corrected", count: 3))
        let quarter = try #require(try a.map { try json($0) }.first { $0["window"] as? String == "15m" })
        #expect(quarter["start"] as? Int64 == Self.trueBoot)
        #expect(quarter["first_at"] as? Int64 == Self.trueBoot + 60_000)
        #expect(quarter["last_at"] as? Int64 == Self.trueBoot + 600_000)
        #expect(quarter["count"] as? Int == 10)
    }

    /// A restart within the same boot while unsynchronised takes up the saved timeline, whatever step the wall clock
    /// made before: every message is exactly that of the run without a restart (no window made or lost).
    @Test func aRestartInTheSameBootContinuesTheTimeline() {
        let steps: [Int64: Int64] = [240_000: -100_000, 420_000: 3_600_000]
        let (steady, _, _) = run(.mark, steps: steps)
        let (restarted, _, _) = run(.mark, steps: steps, restartAfter: 300_000)
        let kinds: Set<MessageKind> = [.telemetry, .aggregate]
        let a = steady.all.filter { kinds.contains($0.kind) }
        let b = restarted.all.filter { kinds.contains($0.kind) }
        #expect(a.count == 21)
        let text = { (m: OutboundMessage) in String(decoding: m.body, as: UTF8.self) }
        #expect(a.map(text) == b.map(text))
        #expect(a.map(\.stamp) == b.map(\.stamp))
    }

    /// `mark`: published at once, on the boottime timeline, marked `unsynced`; steps do not move the times.
    @Test func markPublishesAtOnceMarkedUnsynced() throws {
        let (sink, _, _) = run(.mark, steps: [240_000: -100_000, 420_000: 3_600_000])
        let telemetry = sink.all.filter { $0.kind == .telemetry }
        #expect(telemetry.count == 10)
        for (i, m) in telemetry.enumerated() {
            let first = try json(m)
            #expect(first["tq"] as? String == "unsynced")
            #expect(Int64(((first["bt"] as? Double ?? 0) * 1000).rounded()) == Int64(i + 1) * 60_000)
        }
    }

    /// A reading held from an earlier boot cannot be related to this boot's clock: published unshifted, marked.
    @Test func aReadingFromAnEarlierBootIsMarkedUnverifiedNotShifted() throws {
        var keeper = TimeKeeper()
        _ = keeper.observe(ClockSample(wall: Self.trueBoot + 5_000, boottimeMs: 5_000, synced: true, bootId: "boot-2"))
        let reading = Reading(
            device: "river", point: "level", quantity: "water_level", unit: "cm", value: .number(7),
            quality: .good, acquiredAt: 120_000)
        let body = try #require(
            PayloadEncoder.telemetry([reading], identity: GatewayIdentity(site: "s", id: "g"), device: "river"))
        let held = OutboundMessage(
            kind: .telemetry, topic: "t", body: TimeMarking.mark(body, .unsynced), device: "river",
            acquiredAt: 120_000, stamp: ClockStamp(bootId: "boot-1", boottimeMs: 120_000, quality: .held))
        let m = try #require(TimeCorrection.corrected(held, bootId: "boot-2", offset: keeper.offset))
        let first = try json(m)
        #expect(first["tq"] as? String == "unverified")
        #expect(first["bt"] as? Double == 120)
        // The same reading within its own boot is corrected; while the offset is unknown it stays held.
        let same = try #require(TimeCorrection.corrected(held, bootId: "boot-1", offset: keeper.offset))
        #expect(try json(same)["bt"] as? Double == Double(Self.trueBoot + 120_000) / 1000)
        #expect(TimeCorrection.corrected(held, bootId: "boot-1", offset: nil) == nil)
    }

    /// A synchronised clock changes nothing: no `tq`, the poll's own wall time.
    @Test func syncedClockLeavesBodiesUnchanged() throws {
        let board = ClockTrustBoard()
        board.synchronise(atBoottime: 60_000)
        let sink = ClockTrustSink()
        let pipeline = Self.pipeline(config(.hold), sink, board)
        let t = board.now()
        pipeline.handle(Self.poll(1, at: t))
        let m = try #require(sink.all.first { $0.kind == .telemetry })
        #expect(try json(m)["tq"] == nil)
        #expect(m.acquiredAt == t)
    }

    /// A poll acquired on the old clock but handled after the synchronisation was seen is corrected (within the
    /// poll's hand-over time), never published with its 1970 date.
    @Test func aPollHandledAcrossTheSynchronisationIsCorrected() throws {
        let board = ClockTrustBoard()
        let sink = ClockTrustSink()
        let pipeline = Self.pipeline(config(.hold), sink, board)
        board.set { $0.boottime = 60_000 }
        pipeline.tick()
        let acquired = board.now()  // 120 s after the epoch, at boottime 120 s
        board.set { $0.boottime = 120_000 }
        let stale = board.now()
        board.synchronise(atBoottime: 120_300)
        pipeline.tick()
        pipeline.handle(Self.poll(1, at: stale))
        #expect(acquired == 60_000)
        let m = try #require(sink.all.first { $0.kind == .telemetry })
        let first = try json(m)
        #expect(first["tq"] as? String == "corrected")
        let bt = Int64(((first["bt"] as? Double ?? 0) * 1000).rounded())
        #expect(abs(bt - (Self.trueBoot + 120_000)) <= 1000)
    }

    /// Every message carries the boot and boottime its time stands for and its time quality, for the journal.
    @Test func messagesCarryTheirClockStamp() throws {
        let (marked, _, _) = run(.mark, steps: [240_000: -100_000, 420_000: 3_600_000])
        let telemetry = marked.all.filter { $0.kind == .telemetry }
        #expect(
            telemetry.map(\.stamp)
                == (1...10).map {
                    ClockStamp(bootId: "boot-1", boottimeMs: Int64($0) * 60_000, quality: .unsynced)
                })
        for m in marked.all where m.kind == .aggregate {
            // Closed before the synchronisation: on the boottime timeline; at it: corrected to the true time.
            let corrected = m.acquiredAt > Self.trueBoot
            #expect(
                m.stamp
                    == ClockStamp(
                        bootId: "boot-1", boottimeMs: m.acquiredAt - (corrected ? Self.trueBoot : 0),
                        quality: corrected ? .corrected : .unsynced))
        }
        let (held, _, _) = run(.hold, steps: [240_000: -100_000])
        #expect(
            held.all.filter { $0.kind == .telemetry }.map(\.stamp)
                == (1...10).map {
                    ClockStamp(bootId: "boot-1", boottimeMs: Int64($0) * 60_000, quality: .corrected)
                })
    }

    /// Rain per hour and per day count the rain before the synchronisation: the accumulator's history moves with
    /// the timeline's jump, on times consistent with the boot clock.
    @Test func rainTotalsKeepTheRainBeforeTheSynchronisation() throws {
        let gauge = DeviceProfile(
            id: "gauge",
            points: [
                PointSpec(name: "tips", quantity: "precipitation", table: .input, address: 0, type: .u16, unit: "mm")
            ])
        var c = config(.mark)
        c.devices = [
            DeviceConfig(
                name: "gauge", bus: "b", unitId: 2, profile: gauge, pollInterval: .seconds(60),
                rain: RainConfig(point: "tips"))
        ]
        let board = ClockTrustBoard()
        let sink = ClockTrustSink()
        let pipeline = Self.pipeline(c, sink, board)
        // One millimetre a minute from boottime 60 s (count 0) to 600 s (count 9), unsynchronised at 1970.
        func poll(_ boottime: Int64, count: Double) {
            board.set { $0.boottime = boottime }
            let t = board.now()
            pipeline.handle(
                Self.poll(count, at: t, device: "gauge", point: "tips", quantity: "precipitation", unit: "mm"))
            pipeline.tick()
        }
        for i in 1...10 { poll(Int64(i) * 60_000, count: Double(i - 1)) }
        board.synchronise(atBoottime: 630_000)
        pipeline.tick()
        poll(690_000, count: 10)
        let last = try json(try #require(sink.all.last { $0.topic.hasSuffix("/rain") }))
        #expect(last["at"] as? Int64 == Self.trueBoot + 690_000)
        #expect(last["tq"] == nil)
        #expect(last["intensity_mm_h"] as? Double == 10)
        #expect(last["mm_24h"] as? Double == 10)
    }

    /// A synchronisation that moves the clock backwards (it was ahead: a wrong RTC, a restored shutdown time from
    /// the future) does not make the following readings late: their windows are published, none lost.
    @Test func aBackwardSynchronisationLosesNoWindow() throws {
        let board = ClockTrustBoard()
        board.set { $0.wallOffset = Self.trueBoot + 10 * 86_400_000 }
        let sink = ClockTrustSink()
        let pipeline = Self.pipeline(config(.mark), sink, board)
        func poll(_ boottime: Int64) {
            board.set { $0.boottime = boottime }
            let t = board.now()
            pipeline.handle(Self.poll(Double(boottime / 1000), at: t))
            pipeline.tick()
        }
        for i in 1...5 { poll(Int64(i) * 60_000) }
        board.synchronise(atBoottime: 330_000)
        pipeline.tick()
        for i in 6...9 { poll(Int64(i) * 60_000) }
        let after = try sink.all.filter { $0.kind == .aggregate }.map { try json($0) }
            .filter { $0["window"] as? String == "1m" && $0["tq"] == nil }
        // [360 s, 420 s) and [420 s, 480 s) have closed; [480 s, 540 s) waits for its grace period.
        #expect(after.map { $0["start"] as? Int64 } == [Self.trueBoot + 360_000, Self.trueBoot + 420_000])
        #expect(after.map { $0["mean"] as? Double } == [360, 420])
        #expect(after.allSatisfy { $0["late"] as? Int == 0 })
    }

    /// The hot path does not ask the system for the clock's synchronisation (adjtimex, a file) on every poll: the
    /// once-a-second tick does, the polls reuse its state with fresh wall and boottime readings.
    @Test func pollsReuseTheTicksClockState() throws {
        let board = CountingBoard()
        board.synchronise(atBoottime: 60_000)
        let sink = ClockTrustSink()
        let pipeline = Self.pipeline(config(.mark), sink, board)
        pipeline.tick()
        for i in 1...50 {
            board.set { $0.boottime = 60_000 + Int64(i) * 100 }
            let t = board.now()
            pipeline.handle(Self.poll(1, at: t))
        }
        #expect(board.fullSamples.withLock { $0 } == 1)
        let telemetry = sink.all.filter { $0.kind == .telemetry }
        #expect(telemetry.count == 50)
        #expect(telemetry.last?.acquiredAt == Self.trueBoot + 65_000)
        #expect(try telemetry.allSatisfy { try json($0)["tq"] == nil })
        pipeline.tick()
        #expect(board.fullSamples.withLock { $0 } == 2)
    }

    @Test func markingInsertsTheFieldFirst() {
        #expect(
            String(decoding: TimeMarking.mark(Array("{\"a\":1}".utf8), .unsynced), as: UTF8.self)
                == "{\"tq\":\"unsynced\",\"a\":1}")
        #expect(
            String(decoding: TimeMarking.mark(Array("[{}]".utf8), .corrected), as: UTF8.self)
                == "[{\"tq\":\"corrected\"}]")
    }

    @Test func theKernelClockReadsBoottimeAndBootId() {
        let s = KernelClock().clockSample()
        #expect(s.boottimeMs > 0)
        #expect(s.bootId.count == 36)
    }
}

/// A board that counts the full samples (the adjtimex and file access of `KernelClock`).
final class CountingBoard: GatewayClock {
    let board = ClockTrustBoard()
    let fullSamples = Mutex(0)
    func now() -> UnixMillis { board.now() }
    func monotonicNanos() -> UInt64 { board.monotonicNanos() }
    func clockSample() -> ClockSample {
        fullSamples.withLock { $0 += 1 }
        return board.clockSample()
    }
    func quickSample(after last: ClockSample) -> ClockSample {
        var s = board.clockSample()
        s.synced = last.synced
        s.maxErrorMs = last.maxErrorMs
        return s
    }
    func set(_ change: (inout ClockTrustBoard.State) -> Void) { board.set(change) }
    func synchronise(atBoottime boottime: Int64) { board.synchronise(atBoottime: boottime) }
}
