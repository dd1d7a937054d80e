import Foundation
import PantauCore
import Testing

@testable import PantauJournal

@Suite("Read-only journal access for technicians")
struct JournalReaderTests {
    @Test("the reader sees what the running writer committed, without blocking it")
    func readWhileWriting() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let now = clock.now()
        try journal.commit([
            message(.telemetry, device: "aq-01", at: now - 5000), message(.alert, device: "wl-02", at: now),
            message(.status, device: nil, at: now),
        ])
        let reader = try JournalReader(path: folder.journalPath)
        var stats = try reader.stats()
        #expect(stats.pendingByKind == [.alert: 1, .status: 1, .aggregate: 0, .telemetry: 1])
        #expect(stats.oldestPendingAcquiredAt == now - 5000)
        #expect(stats.pendingSeqRange == 1...3)
        #expect(stats.lastIssuedSeq == 3)
        #expect(stats.bytes == journal.stats().bytes)
        #expect(try reader.peek().map(\.seq) == [2, 3, 1])
        #expect(try reader.peek(kind: .telemetry).map(\.seq) == [1])
        #expect(try reader.peek(device: "wl-02").map(\.seq) == [2])
        #expect(try reader.peek(limit: 1).map(\.seq) == [2])

        // The writer goes on while the reader is open, and the reader's next call sees it.
        try journal.commit([message(.telemetry, device: "aq-01", at: now)])
        let leased = journal.lease(limit: 10, now: now)
        journal.acknowledge(leased.seqs.filter { $0 != 4 })
        try journal.flush()
        stats = try reader.stats()
        #expect(stats.pending == 1)
        #expect(stats.ackedTotal == 3)
        #expect(stats.committedTotal == 4)
        #expect(try reader.peek().map(\.seq) == [4])
    }

    @Test("the reader opens a journal whose daemon is stopped; a missing file is a clear error")
    func readAfterClose() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        try journal.commit([message(.telemetry, at: clock.now())])
        journal.close()
        #expect(!folder.files().contains("journal.sqlite-wal"))
        #expect(try JournalReader(path: folder.journalPath).stats().pending == 1)
        #expect {
            _ = try JournalReader(path: folder.path + "/nothing.sqlite")
        } throws: { error in
            (error as? JournalError)?.code == .notFound
        }
    }

    @Test("CSV export quotes commas, quotes and line breaks (RFC 4180)")
    func exportCSV() throws {
        let folder = try TempFolder()
        let clock = TestClock(1_790_000_000_123)
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        try journal.commit([
            message(.telemetry, device: "aq-01", at: clock.now(), body: "{\"n\":\"pm25\",\"v\":12.5}"),
            message(.status, device: nil, at: clock.now(), body: "{\"note\":\"line1\nline2\"}"),
        ])
        var lines: [String] = []
        let count = try JournalReader(path: folder.journalPath).export(format: .csv) { lines.append($0) }
        #expect(count == 2)
        #expect(
            lines == [
                "seq,kind,device,topic,acquired_at,acquired_utc,qos,retain,content_type,body",
                "1,telemetry,aq-01,pantau/site/gw/telemetry/aq-01,1790000000123,2026-09-21T14:13:20.123Z,1,false,"
                    + "application/json,\"{\"\"n\"\":\"\"pm25\"\",\"\"v\"\":12.5}\"",
                "2,status,,pantau/site/gw/status/gw,1790000000123,2026-09-21T14:13:20.123Z,1,false,application/json,"
                    + "\"{\"\"note\"\":\"\"line1\nline2\"\"}\"",
            ])
    }

    @Test("JSON Lines export: one valid object per record, body as text, filters applied")
    func exportJSONLines() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let now = clock.now()
        try journal.commit([
            message(.telemetry, device: "aq-01", at: now - 10_000, body: "{\"v\":\"tab\\there\"}"),
            message(.alert, device: "wl-02", at: now, body: "{\"level\":\"Siaga 2\"}"),
            message(.telemetry, device: "aq-01", at: now),
        ])
        var lines: [String] = []
        let reader = try JournalReader(path: folder.journalPath)
        try reader.export(format: .jsonLines, filter: JournalFilter(device: "aq-01")) { lines.append($0) }
        #expect(lines.count == 2)
        let objects = try lines.map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(objects.map { $0["seq"] as? Int } == [1, 3])
        #expect(objects.first?["body"] as? String == "{\"v\":\"tab\\there\"}")
        #expect(objects.first?["kind"] as? String == "telemetry")
        #expect(objects.first?["acquired_at"] as? Int64 == now - 10_000)

        lines = []
        try reader.export(format: .jsonLines, filter: JournalFilter(since: now)) { lines.append($0) }
        #expect(lines.count == 2)
        lines = []
        try reader.export(format: .jsonLines, filter: JournalFilter(kind: .alert)) { lines.append($0) }
        #expect(
            lines == [
                "{\"seq\":2,\"kind\":\"alert\",\"device\":\"wl-02\",\"topic\":\"pantau/site/gw/alert/wl-02\","
                    + "\"acquired_at\":\(now),\"acquired_utc\":\"\(JournalFiles.rfc3339(now))\",\"qos\":1,"
                    + "\"retain\":true,\"content_type\":\"application/json\","
                    + "\"body\":\"{\\\"level\\\":\\\"Siaga 2\\\"}\"}"
            ])
    }

    @Test(
        "UTC formatting",
        arguments: [
            (Int64(0), "1970-01-01T00:00:00.000Z"), (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_790_000_000_123, "2026-09-21T14:13:20.123Z"), (-1, "1969-12-31T23:59:59.999Z"),
        ])
    func utc(millis: Int64, text: String) {
        #expect(JournalFiles.rfc3339(millis) == text)
    }
}
