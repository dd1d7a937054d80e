import PantauCore
import Testing

@testable import PantauJournal

@Suite("Journal bounds: size, age, full disk")
struct JournalBoundsTests {
    static let devices = ["aq-01", "wl-02", "rg-03"]

    @Test("a long outage at the size bound drops the oldest telemetry first, counted exactly per device")
    func sizeBound() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let telemetrySize = JournalSchema.size(of: message(.telemetry, device: "aq-01", at: 0))
        let maxBytes = telemetrySize * 100
        let journal = try Journal(
            config: testConfig(folder, maxBytes: maxBytes), clock: clock, logger: quietLogger)
        defer { journal.close() }

        var telemetry: [OutboundMessage] = []
        var alerts: [OutboundMessage] = []
        for cycle in 0..<200 {
            var group = Self.devices.map { message(.telemetry, device: $0, at: clock.now()) }
            if cycle % 25 == 0 {
                group.append(message(.alert, device: "wl-02", at: clock.now(), body: "{\"level\":3}"))
            }
            telemetry += group.filter { $0.kind == .telemetry }
            alerts += group.filter { $0.kind == .alert }
            try journal.commit(group)
            clock.advance(.seconds(10))
        }

        // Each commit drops just enough whole records: what remains is the newest telemetry that fits.
        let alertBytes = alerts.reduce(Int64(0)) { $0 + JournalSchema.size(of: $1) }
        let kept = Int((maxBytes - alertBytes) / telemetrySize)
        let dropped = telemetry.prefix(telemetry.count - kept)
        var expected: [String: Int64] = [:]
        for m in dropped { expected[m.device ?? "", default: 0] += 1 }

        let stats = journal.stats()
        #expect(stats.bytes <= maxBytes)
        #expect(stats.dropsByDevice == expected)
        #expect(stats.dropsByKind == [.telemetry: Int64(dropped.count)])
        #expect(stats.pendingByKind[.alert] == alerts.count)
        #expect(stats.pendingByKind[.telemetry] == kept)

        let reader = try JournalReader(path: folder.journalPath)
        let remaining = try reader.peek(limit: 10_000)
        #expect(remaining.filter { $0.message.kind == .alert }.map(\.message) == alerts)
        #expect(remaining.filter { $0.message.kind == .telemetry }.map(\.message) == Array(telemetry.suffix(kept)))
        // Counters outlive the process.
        journal.close()
        #expect(try reader.stats().dropsByDevice == expected)
    }

    @Test("records older than the age bound are dropped and counted")
    func ageBound() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(
            config: testConfig(folder, maxAge: .minutes(60)), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let start = clock.now()
        try journal.commit([
            message(.telemetry, device: "aq-01", at: start), message(.telemetry, device: "wl-02", at: start),
            message(.alert, device: "wl-02", at: start), message(.telemetry, device: "aq-01", at: start + 1_800_000),
        ])
        #expect(journal.stats().dropsTotal == 0)

        clock.advance(.minutes(61))
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.dropsByDevice == ["aq-01": 1, "wl-02": 2])
        #expect(stats.dropsByKind == [.telemetry: 2, .alert: 1])
        #expect(journal.lease(limit: 10, now: clock.now()).seqs == [4])
    }

    @Test("a full database (max_page_count) never crashes, never loses an alert, and recovers")
    func diskFull() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(
            config: testConfig(folder), clock: clock, logger: quietLogger, maxPageCount: 60, memoryLimit: 10_000)
        defer { journal.close() }
        let body = "{\"v\":\"" + String(repeating: "x", count: 300) + "\"}"
        var alertCount = 0
        var telemetryCount = 0

        // Telemetry fills the file; room is made by dropping the oldest telemetry, alerts stay.
        for cycle in 0..<300 {
            var group = Self.devices.map { message(.telemetry, device: $0, at: clock.now(), body: body) }
            telemetryCount += group.count
            if cycle % 10 == 0 {
                group.append(message(.alert, device: "wl-02", at: clock.now(), body: body))
                alertCount += 1
            }
            journal.append(group)
            try? journal.flush()
            clock.advance(.seconds(10))
        }
        var stats = journal.stats()
        #expect(stats.dropsByKind[.telemetry, default: 0] > 0)
        #expect(stats.dropsByKind[.alert] == nil)
        #expect(stats.pendingByKind[.alert] == alertCount)

        // Only alerts left to add and no telemetry left to drop: commits fail, alerts wait in memory.
        var failures = 0
        for _ in 0..<3000 where failures < 5 {
            journal.append([message(.alert, device: "wl-02", at: clock.now(), body: body)])
            alertCount += 1
            do { try journal.flush() } catch { failures += 1 }
            clock.advance(.seconds(10))
        }
        stats = journal.stats()
        #expect(failures > 0)
        #expect(stats.diskFull)
        #expect(stats.queued > 0)
        #expect(stats.lastCommitError != nil)
        #expect(stats.dropsByKind[.alert] == nil)

        journal.setMaxPageCount(100_000)
        try journal.flush()
        stats = journal.stats()
        #expect(!stats.diskFull)
        #expect(stats.queued == 0)
        #expect(stats.lastCommitError == nil)
        #expect(stats.pendingByKind[.alert] == alertCount)
        #expect(stats.dropsByKind[.alert] == nil)
        let pendingTelemetry = Int64(stats.pendingByKind[.telemetry] ?? 0)
        #expect(pendingTelemetry + stats.dropsByKind[.telemetry, default: 0] == Int64(telemetryCount))
    }

    @Test("on a full database, acknowledged records free the room for new ones")
    func diskFullAcknowledged() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger, maxPageCount: 40)
        defer { journal.close() }
        let body = "{\"v\":\"" + String(repeating: "y", count: 500) + "\"}"
        var appended = 0
        while journal.stats().queued == 0 && appended < 2000 {
            journal.append([message(.alert, at: clock.now(), body: body)])
            appended += 1
            try? journal.flush()
        }
        #expect(journal.stats().queued > 0)
        #expect(journal.stats().diskFull)

        let leased = journal.lease(limit: 10_000, now: clock.now())
        journal.acknowledge(leased.seqs)
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.queued == 0)
        #expect(stats.pendingByKind[.alert] == appended - leased.count)
        #expect(stats.dropsTotal == 0)
    }

    @Test("closing while the database is full returns after one attempt; what could not be committed is reported")
    func closeWhileFull() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger, maxPageCount: 30)
        let body = "{\"v\":\"" + String(repeating: "w", count: 500) + "\"}"
        var appended = 0
        while journal.stats().queued == 0 && appended < 2000 {
            journal.append([message(.alert, at: clock.now(), body: body)])
            appended += 1
            try? journal.flush()
        }
        #expect(journal.stats().queued > 0)
        journal.close()
        #expect(journal.stats().queued > 0)
        #expect(throws: JournalError.self) { try journal.flush() }
    }
}
