import Foundation
import PantauCore
import Testing

@testable import PantauJournal

/// Issue 14: each record keeps the boot and `CLOCK_BOOTTIME` its time stands for, and its time quality, beside the
/// wall time; a journal of the older schema is upgraded in place without losing a record.
@Suite struct JournalClockStampTests {
    /// The version 1 schema as pantau wrote it before the clock stamp.
    static let versionOneSchema = """
        CREATE TABLE records (
            seq INTEGER PRIMARY KEY, lane INTEGER NOT NULL, kind INTEGER NOT NULL, device TEXT,
            topic TEXT NOT NULL, body BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
            acquired_at INTEGER NOT NULL, content_type TEXT NOT NULL, size INTEGER NOT NULL);
        CREATE INDEX records_lane_seq ON records(lane, seq);
        CREATE INDEX records_lane_acquired ON records(lane, acquired_at);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta(key, value) VALUES ('last_seq', 1), ('committed_total', 1), ('acked_total', 0);
        CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE drops (device TEXT NOT NULL, kind INTEGER NOT NULL, count INTEGER NOT NULL,
            PRIMARY KEY (device, kind));
        INSERT INTO records VALUES (1, 2, 3, 'aq-01', 'pantau/site/gw/telemetry/aq-01', CAST('{"v":1}' AS BLOB), 1, 0,
            1790000000000, 'application/json', 60);
        PRAGMA user_version=1;
        """

    struct Row: Equatable {
        var seq: Int64
        var bootId: String?
        var boottime: Int64?
        var tq: String?
    }

    func rows(_ path: String) throws -> [Row] {
        let db = try SQLiteConnection(path: path, readOnly: true)
        let s = try db.prepare("SELECT seq, boot_id, boottime, tq FROM records ORDER BY seq")
        var out: [Row] = []
        while try s.step() {
            out.append(
                Row(
                    seq: s.int64(0), bootId: s.text(1), boottime: s.isNull(2) ? nil : s.int64(2), tq: s.text(3)))
        }
        return out
    }

    /// The unsynchronised record is dated 1970: the seven-day age bound must not take it for old.
    @Test func stampsAreStoredBesideTheWallTime() throws {
        let folder = try TempFolder()
        let journal = try Journal(config: testConfig(folder), clock: TestClock(), logger: quietLogger)
        var unsynced = message(.telemetry, at: 60_000, body: "[{\"tq\":\"unsynced\",\"bt\":60}]")
        unsynced.stamp = ClockStamp(bootId: "boot-1", boottimeMs: 60_000, quality: .unsynced)
        var synced = message(.aggregate, at: 1_790_000_000_000)
        synced.stamp = ClockStamp(bootId: "boot-1", boottimeMs: 90_000, quality: nil)
        try journal.commit([unsynced, synced, message(.status, device: nil, at: 1_790_000_000_500)])
        journal.close()
        let stored = try rows(folder.journalPath)
        #expect(
            stored == [
                Row(seq: 1, bootId: "boot-1", boottime: 60_000, tq: "unsynced"),
                Row(seq: 2, bootId: "boot-1", boottime: 90_000, tq: nil),
                Row(seq: 3, bootId: nil, boottime: nil, tq: nil),
            ])
    }

    @Test func aVersionOneJournalIsUpgradedKeepingItsRecords() throws {
        let folder = try TempFolder()
        do {
            let db = try SQLiteConnection(path: folder.journalPath, readOnly: false)
            try db.execute(Self.versionOneSchema)
        }
        let journal = try Journal(config: testConfig(folder), clock: TestClock(), logger: quietLogger)
        #expect(journal.writerPragma("user_version") == "4")
        #expect(journal.writerPragma("table_info(acked)") != nil)
        #expect(journal.startupEvents.isEmpty)
        var m = message(.telemetry, at: 1_790_000_001_000)
        m.stamp = ClockStamp(bootId: "boot-2", boottimeMs: 5_000, quality: .unsynced)
        try journal.commit([m])
        let leased = journal.lease(limit: 10, now: 1_790_000_002_000)
        #expect(leased.seqs.sorted() == [1, 2])
        let old = leased.first { $0.record.seq == 1 }?.record.message
        #expect(old?.body == Array("{\"v\":1}".utf8))
        #expect(old?.acquiredAt == 1_790_000_000_000)
        journal.close()
        #expect(
            try rows(folder.journalPath) == [
                Row(seq: 1, bootId: nil, boottime: nil, tq: nil),
                Row(seq: 2, bootId: "boot-2", boottime: 5_000, tq: "unsynced"),
            ])
        // The read-only reader of `pantau journal` opens the upgraded file.
        #expect(try JournalReader(path: folder.journalPath).stats().pendingByKind[.telemetry] == 2)
        // Version 3: the index the time correction finds held telemetry by.
        let db = try SQLiteConnection(path: folder.journalPath, readOnly: true)
        #expect(try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'records_held'") == 1)
    }

    @Test func aVersionOneFileOpensReadOnlyToo() throws {
        let folder = try TempFolder()
        do {
            let db = try SQLiteConnection(path: folder.journalPath, readOnly: false)
            try db.execute(Self.versionOneSchema)
        }
        #expect(try JournalReader(path: folder.journalPath).stats().pendingByKind[.telemetry] == 1)
    }

    static let trueBoot: Int64 = 1_796_515_200_000

    func unsynced(_ kind: MessageKind, boottime: Int64, timeline offset: Int64 = 0, boot: String) -> OutboundMessage {
        var m = message(kind, at: boottime + offset, body: #"{"tq":"unsynced","ts":\#(boottime + offset)}"#)
        m.stamp = ClockStamp(bootId: boot, boottimeMs: boottime, quality: .unsynced)
        return m
    }

    func bodies(_ deliveries: [Delivery]) -> [String] {
        deliveries.map { String(decoding: $0.record.message.body, as: UTF8.self) }
    }

    /// At synchronisation every unsynchronised message still journaled is corrected from its boottime: in memory,
    /// in the file, and those an earlier process of the same boot left; another boot's are marked, not shifted.
    @Test func correctTimesInMemoryInTheFileAndAcrossARestart() throws {
        let folder = try TempFolder()
        let clock = TestClock(60_000)
        do {
            // An earlier process of this boot (its timeline 1 h ahead) and one of an earlier boot.
            let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
            try journal.commit([
                unsynced(.telemetry, boottime: 10_000, boot: "old-boot"),
                unsynced(.telemetry, boottime: 20_000, timeline: 3_600_000, boot: "b1"),
            ])
            journal.close()
        }
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        // Still unsynchronised: only the earlier boot's is marked.
        #expect(
            journal.correctTimes(bootId: "b1", offset: nil)
                == Journal.TimeCorrectionCount(inMemory: 0, corrected: 0, unverified: 1))
        try journal.commit([unsynced(.aggregate, boottime: 30_000, boot: "b1")])
        var synced = message(.telemetry, at: Self.trueBoot + 50_000, body: #"{"ts":\#(Self.trueBoot + 50_000)}"#)
        synced.stamp = ClockStamp(bootId: "b1", boottimeMs: 50_000, quality: nil)
        journal.append([unsynced(.status, boottime: 40_000, boot: "b1"), synced])
        let count = journal.correctTimes(bootId: "b1", offset: Self.trueBoot)
        // In memory: the aggregate (written) and the status (not yet); in the file all three of this boot.
        // (The status was committed by the correction already corrected: the file had two rows of this boot left.)
        #expect(count == Journal.TimeCorrectionCount(inMemory: 2, corrected: 2, unverified: 0))
        #expect(journal.correctTimes(bootId: "b1", offset: Self.trueBoot) == Journal.TimeCorrectionCount())
        let leased = journal.lease(limit: 10, now: Self.trueBoot + 60_000)
        #expect(leased.count == 5)
        let byBody = Set(bodies(leased))
        #expect(
            byBody == [
                #"{"tq":"unverified","ts":10000}"#,
                #"{"tq":"corrected","ts":\#(Self.trueBoot + 20_000)}"#,
                #"{"tq":"corrected","ts":\#(Self.trueBoot + 30_000)}"#,
                #"{"tq":"corrected","ts":\#(Self.trueBoot + 40_000)}"#,
                #"{"ts":\#(Self.trueBoot + 50_000)}"#,
            ])
        for d in leased {
            let ts = String(decoding: d.record.message.body, as: UTF8.self).split(separator: ":").last!.dropLast()
            #expect(d.record.message.acquiredAt == Int64(ts))
        }
        journal.close()
        #expect(try rows(folder.journalPath).map(\.tq) == ["unverified", "corrected", "corrected", "corrected", nil])
    }

    func held(boottime: Int64, boot: String) -> OutboundMessage {
        var m = message(.telemetry, at: boottime, body: #"{"tq":"unsynced","ts":\#(boottime)}"#)
        m.stamp = ClockStamp(bootId: boot, boottimeMs: boottime, quality: .held)
        return m
    }

    /// `time.unsynced: hold` (issue 14): held telemetry is journaled in a lane no lease reads, across a restart;
    /// alerts go out meanwhile; the correction releases every held record once, with its true time, whether the
    /// file alone held it (an earlier process) or memory too.
    @Test func heldTelemetryIsNeverLeasedBeforeItsCorrectionThenOnce() throws {
        let folder = try TempFolder()
        let clock = TestClock(60_000)
        do {
            let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
            try journal.commit([held(boottime: 10_000, boot: "b1"), held(boottime: 20_000, boot: "b1")])
            #expect(journal.lease(limit: 10, now: 60_000).isEmpty)
            journal.close()
        }
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        journal.append([held(boottime: 30_000, boot: "b1"), message(.alert, at: 30_000)])
        let first = journal.lease(limit: 10, now: 60_000)
        #expect(first.map(\.record.message.kind) == [.alert])
        journal.acknowledge(first.seqs)
        // Still unsynchronised: nothing of this boot moves.
        #expect(journal.correctTimes(bootId: "b1", offset: nil) == Journal.TimeCorrectionCount())
        #expect(journal.lease(limit: 10, now: 60_000).isEmpty)
        #expect(
            journal.correctTimes(bootId: "b1", offset: Self.trueBoot)
                == Journal.TimeCorrectionCount(inMemory: 1, corrected: 3, unverified: 0))
        var sent: [String] = []
        var batch = journal.lease(limit: 1, now: Self.trueBoot + 60_000)
        while !batch.isEmpty {
            sent += bodies(batch)
            journal.acknowledge(batch.seqs)
            batch = journal.lease(limit: 1, now: Self.trueBoot + 60_000)
        }
        #expect(
            sent == [Int64(10_000), 20_000, 30_000].map { #"{"tq":"corrected","ts":\#(Self.trueBoot + $0)}"# })
        try journal.flush()
        #expect(journal.stats().pending == 0)
    }

    /// Held telemetry is bounded like the rest: the size bound drops it first among telemetry (it is the oldest),
    /// counted as a drop; the age bound leaves it alone (its 1970 date says nothing about its age).
    @Test func theSizeBoundDropsHeldTelemetryFirstAndTheAgeBoundNone() throws {
        let folder = try TempFolder()
        let clock = TestClock(Self.trueBoot)
        func synced(_ n: Int64) -> OutboundMessage {
            message(.telemetry, at: Self.trueBoot + n, body: #"{"ts":\#(Self.trueBoot + n)}"#)
        }
        let group = [synced(1), held(boottime: 10_000, boot: "b1"), held(boottime: 20_000, boot: "b1"), synced(2)]
        let last = synced(3)
        let total = (group + [last]).reduce(Int64(0)) { $0 + JournalSchema.size(of: $1) }
        let journal = try Journal(
            config: testConfig(folder, maxBytes: total - 1, maxAge: .minutes(60)), clock: clock, logger: quietLogger)
        defer { journal.close() }
        try journal.commit(group)
        try journal.commit([last])
        #expect(journal.stats().dropsByKind == [.telemetry: 1])
        #expect(journal.stats().pendingByKind[.telemetry] == 4)
        journal.correctTimes(bootId: "b1", offset: Self.trueBoot)
        var sent: Set<String> = []
        var batch = journal.lease(limit: 10, now: Self.trueBoot + 60_000)
        while !batch.isEmpty {
            sent.formUnion(bodies(batch))
            journal.acknowledge(batch.seqs)
            batch = journal.lease(limit: 10, now: Self.trueBoot + 60_000)
        }
        #expect(
            sent == [
                #"{"ts":\#(Self.trueBoot + 1)}"#, #"{"tq":"corrected","ts":\#(Self.trueBoot + 20_000)}"#,
                #"{"ts":\#(Self.trueBoot + 2)}"#, #"{"ts":\#(Self.trueBoot + 3)}"#,
            ])
    }
}
