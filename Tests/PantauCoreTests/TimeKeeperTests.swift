import Testing

@testable import PantauCore

/// Issue 14: the timeline runs on boottime while the clock is unsynchronised; steps are seen, not followed.
@Suite struct TimeKeeperTests {
    /// The true time of the world at boottime 0 of this boot: 2026-12-06 00:00:00 UTC.
    static let trueBoot: Int64 = 1_796_515_200_000

    func sample(_ boottime: Int64, wallOffset: Int64, synced: Bool, boot: String = "b1") -> ClockSample {
        ClockSample(wall: boottime + wallOffset, boottimeMs: boottime, synced: synced, maxErrorMs: 16, bootId: boot)
    }

    @Test func bootAt1970RunUnsyncedThenSync() {
        var keeper = TimeKeeper()
        // Boots with the wall clock at 1970 (no RTC): 5 s after boot the wall says 5 s after the epoch.
        #expect(keeper.observe(sample(5_000, wallOffset: 0, synced: false)).isEmpty)
        #expect(keeper.quality == .unsynced)
        #expect(keeper.time(atBoottime: 65_000) == 65_000)
        #expect(keeper.observe(sample(65_000, wallOffset: 0, synced: false)).isEmpty)
        // NTP answers: the wall clock is stepped to the true time and marked synchronised.
        let actions = keeper.observe(sample(125_000, wallOffset: Self.trueBoot, synced: true))
        #expect(actions == [.stepped(byMillis: Self.trueBoot), .synchronised(correctionMillis: Self.trueBoot)])
        #expect(keeper.synced && keeper.quality == .synced && keeper.syncs == 1 && keeper.stepsSeen == 1)
        // A reading acquired at boottime 65 s is corrected to its true time exactly.
        #expect(keeper.time(atBoottime: 65_000) == Self.trueBoot + 65_000)
        #expect(keeper.maxErrorMs == 16)
    }

    @Test func stepsWhileUnsyncedDoNotMoveTheTimeline() {
        var keeper = TimeKeeper()
        _ = keeper.observe(sample(1_000, wallOffset: 1_000_000, synced: false))
        // Backward step of 10 minutes, then forward by an hour: seen and counted, the timeline stays on boottime.
        #expect(
            keeper.observe(sample(2_000, wallOffset: 1_000_000 - 600_000, synced: false))
                == [.stepped(byMillis: -600_000)])
        #expect(
            keeper.observe(sample(3_000, wallOffset: 1_000_000 + 3_000_000, synced: false))
                == [.stepped(byMillis: 3_600_000)])
        #expect(keeper.stepsSeen == 2)
        #expect(keeper.time(atBoottime: 3_000) == 1_003_000)
        // Jitter below the tolerance is not a step.
        #expect(keeper.observe(sample(4_000, wallOffset: 1_000_000 + 3_000_500, synced: false)).isEmpty)
    }

    @Test func stepsWhileSyncedAreFollowedAndLosingSyncFreeRuns() {
        var keeper = TimeKeeper()
        _ = keeper.observe(sample(1_000, wallOffset: Self.trueBoot, synced: true))
        #expect(
            keeper.observe(sample(2_000, wallOffset: Self.trueBoot + 5_000, synced: true))
                == [.stepped(byMillis: 5_000)])
        #expect(keeper.time(atBoottime: 2_000) == Self.trueBoot + 7_000)
        #expect(keeper.observe(sample(3_000, wallOffset: Self.trueBoot + 5_000, synced: false)) == [.lostSync])
        // Unsynchronised again: a wild step is not followed.
        _ = keeper.observe(sample(4_000, wallOffset: 0, synced: false))
        #expect(keeper.time(atBoottime: 4_000) == Self.trueBoot + 9_000)
    }

    @Test func aRebootStartsAFreshTimeline() {
        var keeper = TimeKeeper()
        _ = keeper.observe(sample(1_000, wallOffset: Self.trueBoot, synced: true, boot: "b1"))
        var next = TimeKeeper()
        _ = next.observe(sample(500, wallOffset: 0, synced: false, boot: "b2"))
        #expect(next.bootId == "b2" && keeper.bootId == "b1")
        #expect(next.time(atBoottime: 500) == 500)
    }
}

/// `time.unsynced`: `mark` by default, `hold` when asked, anything else an error naming file:line:col and the key.
@Suite struct UnsyncedTimeConfigTests {
    static let base = """
        gateway: {site: s, id: g}
        buses: []
        devices: []
        mqtt: {brokers: [127.0.0.1]}
        """

    func parse(_ text: String) -> Result<GatewayConfig, ConfigurationError> {
        ConfigParser.parse(text, file: "gw.yaml", library: ProfileLibrary(directories: []), environment: { _ in nil })
    }

    @Test func defaultIsMarkAndHoldIsAccepted() throws {
        #expect(try parse(Self.base).get().unsyncedTime == .mark)
        #expect(try parse(Self.base + "\ntime: {unsynced: hold}").get().unsyncedTime == .hold)
    }

    @Test func aWrongValueIsAnErrorAtItsPlace() {
        guard case .failure(let error) = parse(Self.base + "\ntime: {unsynced: maybe}") else {
            Issue.record("accepted time.unsynced: maybe")
            return
        }
        let text = "\(error)"
        #expect(text.contains("gw.yaml:5:"))
        #expect(text.contains("unsynced") && text.contains("hold, mark"))
    }

    // MARK: correcting a body stamped on an unsynchronised clock

    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    @Test func retimeMovesTheSenMLBaseTimeAndSetsTheQuality() {
        let pack = Array(#"[{"tq":"unsynced","bn":"urn:x:","bt":60.25,"n":"a","v":1},{"n":"b","t":1.5,"v":2}]"#.utf8)
        #expect(
            text(TimeCorrection.retime(pack, by: TimeKeeperTests.trueBoot, quality: .corrected))
                == #"[{"tq":"corrected","bn":"urn:x:","bt":1796515260.25,"n":"a","v":1},{"n":"b","t":1.5,"v":2}]"#)
        #expect(
            text(TimeCorrection.retime(Array(#"[{"tq":"unsynced","bt":60}]"#.utf8), by: 1, quality: .corrected))
                == #"[{"tq":"corrected","bt":60.001}]"#)
    }

    @Test func retimeMovesTopLevelMillisecondsOnly() {
        let aggregate = Array(
            (#"{"tq":"unsynced","count":3,"end":120000,"first_at":61000,"last_at":119000,"point":"at","#
                + #""start":60000,"mean":{"at":5},"v":"since"}"#).utf8)
        #expect(
            text(TimeCorrection.retime(aggregate, by: 1000, quality: .corrected))
                == #"{"tq":"corrected","count":3,"end":121000,"first_at":62000,"last_at":120000,"point":"at","#
                + #""start":61000,"mean":{"at":5},"v":"since"}"#)
        // A key-like text inside an escaped string is not a key: the escapes are skipped, only the real `ts` moves.
        let escaped = Array(#"{"tq":"unsynced","device":"a\",\"ts\":7","ts":5}"#.utf8)
        #expect(
            text(TimeCorrection.retime(escaped, by: 1000, quality: .unverified))
                == #"{"tq":"unverified","device":"a\",\"ts\":7","ts":1005}"#)
    }

    func stamped(_ body: String, at: Int64, boottime: Int64, boot: String, _ q: TimeQuality? = .unsynced)
        -> OutboundMessage
    {
        OutboundMessage(
            kind: .aggregate, topic: "t", body: Array(body.utf8), device: "d", acquiredAt: at,
            stamp: ClockStamp(bootId: boot, boottimeMs: boottime, quality: q))
    }

    @Test func correctionIsFromBoottimeWithinTheBootAndAMarkOtherwise() throws {
        // Stamped at boottime 65 s on a timeline that said 1 h after the epoch then (a stepped, unsynced clock).
        let m = stamped(#"{"tq":"unsynced","ts":3600000}"#, at: 3_600_000, boottime: 65_000, boot: "b1")
        let fixed = try #require(TimeCorrection.corrected(m, bootId: "b1", offset: TimeKeeperTests.trueBoot))
        #expect(fixed.acquiredAt == TimeKeeperTests.trueBoot + 65_000)
        #expect(text(fixed.body) == #"{"tq":"corrected","ts":\#(TimeKeeperTests.trueBoot + 65_000)}"#)
        #expect(fixed.stamp == ClockStamp(bootId: "b1", boottimeMs: 65_000, quality: .corrected))
        // Another boot: marked, never shifted.
        let other = try #require(TimeCorrection.corrected(m, bootId: "b2", offset: TimeKeeperTests.trueBoot))
        #expect(other.acquiredAt == 3_600_000)
        #expect(text(other.body) == #"{"tq":"unverified","ts":3600000}"#)
        #expect(TimeCorrection.corrected(m, bootId: "b2", offset: nil)?.stamp?.quality == .unverified)
        // Nothing to do: the offset is not known yet, or the message is not marked unsynced.
        #expect(TimeCorrection.corrected(m, bootId: "b1", offset: nil) == nil)
        let synced = stamped(#"{"ts":5}"#, at: 5, boottime: 5, boot: "b1", nil)
        #expect(TimeCorrection.corrected(synced, bootId: "b1", offset: TimeKeeperTests.trueBoot) == nil)
    }

    @Test func aBodyThatIsNotJSONIsNeverRewrittenWhateverItsFirstByte() throws {
        // A protobuf may start with any byte, `{` (0x7B) included: the content type decides, not the bytes.
        var m = stamped(#"{"tq":"unsynced","ts":3600000}"#, at: 3_600_000, boottime: 65_000, boot: "b1")
        m.contentType = "application/vnd.sparkplug.b"
        let fixed = try #require(TimeCorrection.corrected(m, bootId: "b1", offset: TimeKeeperTests.trueBoot))
        #expect(fixed.body == m.body)
        #expect(fixed.acquiredAt == TimeKeeperTests.trueBoot + 65_000)
        #expect(fixed.stamp?.quality == .corrected)
        let other = try #require(TimeCorrection.corrected(m, bootId: "b2", offset: TimeKeeperTests.trueBoot))
        #expect(other.body == m.body)
        #expect(other.stamp?.quality == .unverified)
        // The same bytes as SenML JSON are moved.
        m.contentType = "application/senml+json"
        let moved = try #require(TimeCorrection.corrected(m, bootId: "b1", offset: TimeKeeperTests.trueBoot))
        #expect(text(moved.body) == #"{"tq":"corrected","ts":\#(TimeKeeperTests.trueBoot + 65_000)}"#)
    }

    @Test func theQualityOfAMarkedBody() {
        #expect(TimeMarking.quality(of: Array(#"[{"tq":"unsynced","bt":1}]"#.utf8)) == .unsynced)
        #expect(TimeMarking.quality(of: Array(#"{"tq":"corrected"}"#.utf8)) == .corrected)
        #expect(TimeMarking.quality(of: Array(#"{"ts":1,"tq":"unsynced"}"#.utf8)) == nil)
        #expect(TimeMarking.quality(of: Array(#"{"tq""#.utf8)) == nil)
    }
}
