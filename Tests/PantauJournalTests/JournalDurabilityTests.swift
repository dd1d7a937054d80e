import Foundation
import PantauCore
import Testing

@testable import PantauJournal

@Suite("Journal durability: restart, group commit, pragmas, damaged files")
struct JournalDurabilityTests {
    @Test("after a restart every unacknowledged record is pending again and sequences continue, never reused")
    func restart() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let now = clock.now()
        do {
            let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
            try journal.commit((0..<5).map { i in message(.telemetry, at: now + Int64(i)) })
            #expect(journal.lease(limit: 5, now: now).seqs == [1, 2, 3, 4, 5])
            // The tail is acknowledged and deleted: its sequence numbers must still never come back.
            journal.acknowledge([4, 5])
            try journal.flush()
            journal.close()
        }
        let reopened = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { reopened.close() }
        #expect(reopened.startupEvents.isEmpty)
        let pending = reopened.lease(limit: 10, now: now)
        #expect(pending.seqs == [1, 2, 3])
        #expect(pending.map(\.record.message.acquiredAt) == [now, now + 1, now + 2])
        try reopened.commit([message(.telemetry, at: now + 10)])
        #expect(reopened.lease(limit: 10, now: now).seqs == [6])
        let stats = reopened.stats()
        #expect(stats.lastIssuedSeq == 6)
        #expect(stats.committedTotal == 6)
        #expect(stats.ackedTotal == 2)
    }

    @Test("a changed configuration (durability, bounds, interval) keeps the backlog")
    func configChange() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        do {
            let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
            try journal.commit(["aq-01", "wl-02", "rg-03"].map { message(.telemetry, device: $0, at: clock.now()) })
            journal.close()
        }
        let changed = testConfig(folder, durability: .normal, commitInterval: .seconds(1), backlogShare: 0.2)
        let reopened = try Journal(config: changed, clock: clock, logger: quietLogger)
        defer { reopened.close() }
        #expect(reopened.writerPragma("synchronous") == "1")
        #expect(
            reopened.lease(limit: 10, now: clock.now()).map(\.record.message.device) == ["aq-01", "wl-02", "rg-03"])
    }

    @Test("many appends become few transactions")
    func groupCommit() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let now = clock.now()
        for i in 0..<500 { journal.append([message(.telemetry, at: now + Int64(i))]) }
        try journal.flush()
        #expect(journal.stats().transactions == 1)
        #expect(journal.stats().committedTotal == 500)

        for i in 0..<2500 { journal.append([message(.telemetry, at: now + Int64(i))]) }
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.committedTotal == 3000)
        #expect(stats.pendingByKind[.telemetry] == 3000)
        #expect(stats.transactions == 2)
    }

    @Test("the commit interval commits without a flush")
    func commitInterval() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let config = testConfig(folder, commitInterval: Interval(milliseconds: 20))
        let journal = try Journal(config: config, clock: clock, logger: quietLogger)
        defer { journal.close() }
        journal.append([message(.telemetry, at: clock.now())])
        // Polls without asserting how long it took: only that the writer got there on its own.
        var waited = 0
        while journal.stats().committedTotal == 0 && waited < 1000 {
            usleep(10_000)
            waited += 1
        }
        #expect(journal.stats().committedTotal == 1)
        #expect(journal.stats().queued == 0)
    }

    @Test(
        "durability sets synchronous; the journal runs in WAL mode",
        arguments: [
            (JournalConfig.Durability.full, "2"), (.normal, "1"),
        ])
    func durabilityPragma(durability: JournalConfig.Durability, synchronous: String) throws {
        let folder = try TempFolder()
        let journal = try Journal(
            config: testConfig(folder, durability: durability), clock: TestClock(), logger: quietLogger)
        defer { journal.close() }
        #expect(journal.writerPragma("synchronous") == synchronous)
        #expect(journal.writerPragma("journal_mode") == "wal")
        #expect(journal.writerPragma("user_version") == "4")
        // Debian's SQLite zeroes deleted rows by default (1): a second write of every acknowledged record.
        #expect(journal.writerPragma("secure_delete") == "2")
    }

    @Test("a file that is not a journal is moved aside, a fresh journal starts and the event is reported")
    func garbageFile() throws {
        let folder = try TempFolder()
        let garbage = Data(String(repeating: "this is not a database, ", count: 400).utf8)
        try garbage.write(to: URL(fileURLWithPath: folder.journalPath))
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }

        #expect(journal.startupEvents.count == 1)
        let aside = folder.files().filter { $0.hasPrefix("journal.sqlite.corrupt-") && !$0.hasSuffix("-wal") }
        #expect(aside.count == 1)
        if let name = aside.first {
            #expect(journal.startupEvents.first?.contains(name) == true)
            #expect(try Data(contentsOf: URL(fileURLWithPath: folder.path + "/" + name)) == garbage)
        }
        try journal.commit([message(.alert, at: clock.now())])
        #expect(journal.lease(limit: 5, now: clock.now()).seqs == [1])
    }

    @Test("a damaged page is caught by the integrity check at start")
    func damagedPages() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        do {
            let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
            try journal.commit((0..<300).map { i in message(.telemetry, at: clock.now() + Int64(i)) })
            journal.close()
        }
        // Overwrite pages past the header (the schema stays readable, the b-trees do not).
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: folder.journalPath))
        try handle.seek(toOffset: 4096 * 2)
        handle.write(Data(repeating: 0xA5, count: 4096 * 3))
        try handle.close()

        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        #expect(journal.startupEvents.count == 1)
        #expect(folder.files().contains { $0.hasPrefix("journal.sqlite.corrupt-") })
        #expect(journal.stats().pending == 0)
    }

    @Test("a missing folder is a clear error naming the path")
    func missingFolder() throws {
        let folder = try TempFolder()
        var config = testConfig(folder)
        config.path = folder.path + "/absent/journal.sqlite"
        #expect {
            _ = try Journal(config: config, clock: TestClock(), logger: quietLogger)
        } throws: { error in
            guard let error = error as? JournalError else { return false }
            return error.code == .directoryMissing && error.description.contains(folder.path + "/absent")
        }
    }

    @Test("what was committed survives a crash: a copy of the files taken while the writer runs opens intact")
    func crashCopy() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        try journal.commit((0..<50).map { i in message(.telemetry, at: clock.now() + Int64(i)) })
        journal.acknowledge([1, 2])
        try journal.flush()
        // Copying the database and its WAL without closing is what a power cut leaves behind.
        let copy = try TempFolder()
        for suffix in ["", "-wal"] {
            try FileManager.default.copyItem(atPath: folder.journalPath + suffix, toPath: copy.journalPath + suffix)
        }
        let recovered = try Journal(config: testConfig(copy), clock: clock, logger: quietLogger)
        defer { recovered.close() }
        #expect(recovered.startupEvents.isEmpty)
        #expect(recovered.lease(limit: 100, now: clock.now()).seqs == Array(3...50))
    }
}
