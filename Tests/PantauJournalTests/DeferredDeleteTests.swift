import Foundation
import PantauCore
import Testing

@testable import PantauJournal

/// What the file holds, read with a connection of its own.
private struct FileRows {
    var records: [Int64]
    var acked: [[Int64]]

    init(_ path: String) throws {
        let db = try SQLiteConnection(path: path, readOnly: true)
        defer { db.close() }
        var records: [Int64] = []
        let select = try db.prepare("SELECT seq FROM records ORDER BY seq")
        while try select.step() { records.append(select.int64(0)) }
        var acked: [[Int64]] = []
        let ranges = try db.prepare("SELECT lo, hi FROM acked ORDER BY lo")
        while try ranges.step() { acked.append([ranges.int64(0), ranges.int64(1)]) }
        self.records = records
        self.acked = acked
    }
}

/// An outage: `count` readings a minute apart, nothing acknowledged, all but the last `window` only in the file.
private func outage(_ folder: TempFolder, clock: TestClock, count: Int, window: Int) throws -> Journal {
    let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger, memoryWindow: window)
    let start = clock.now()
    for i in 0..<count { journal.append([message(.telemetry, at: start + Int64(i) * 60_000)]) }
    try journal.flush()
    clock.advance(.minutes(Int64(count) + 1))
    return journal
}

@Suite("Deferred deletes: while a backlog drains, acknowledgements are committed and the rows go once it is over")
struct DeferredDeleteTests {
    @Test(
        "acknowledged backlog rows stay in the file, out of every count, until the last file-only row is acknowledged")
    func deferredUntilDrained() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try outage(folder, clock: clock, count: 20, window: 5)
        defer { journal.close() }
        let first = journal.lease(limit: 8, now: clock.now())
        #expect(first.seqs == Array(1...8))
        journal.acknowledge(first.seqs)
        try journal.flush()

        let stats = journal.stats()
        #expect(stats.pending == 12)
        #expect(stats.ackedTotal == 8)
        #expect(stats.ackedInFile == 8)
        #expect(stats.pendingSeqRange == 9...20)
        #expect(stats.oldestPendingAcquiredAt == clock.now() - 21 * 60_000 + 8 * 60_000)
        #expect(try FileRows(folder.journalPath).records == Array(1...20))
        #expect(try FileRows(folder.journalPath).acked == [[1, 8]])
        // The read-only reader (`pantau journal`) leaves them out too.
        let reader = try JournalReader(path: folder.journalPath)
        let read = try reader.stats()
        #expect(read.pending == 12)
        #expect(read.ackedInFile == 8)
        #expect(read.bytes == stats.bytes)
        #expect(read.pendingSeqRange == 9...20)
        #expect(try reader.peek(limit: 100).map(\.seq) == Array(9...20))

        // The rest of the file-only backlog (9 to 15) acknowledged: the drain is over, the acknowledged rows go.
        let second = journal.lease(limit: 7, now: clock.now())
        #expect(second.seqs == Array(9...15))
        journal.acknowledge(second.seqs)
        try journal.flush()
        let after = journal.stats()
        #expect(after.pending == 5)
        #expect(after.ackedInFile == 0)
        #expect(after.ackedTotal == 15)
        // Rows 16 to 20 are in memory and in the file, not acknowledged: only the acknowledged rows were deleted.
        #expect(try FileRows(folder.journalPath).records == Array(16...20))
        #expect(try FileRows(folder.journalPath).acked == [])

        // Every row acknowledged: the table is emptied in one go.
        let last = journal.lease(limit: 10, now: clock.now())
        #expect(last.seqs == Array(16...20))
        journal.acknowledge(last.seqs)
        try journal.flush()
        #expect(journal.stats().pending == 0)
        #expect(try FileRows(folder.journalPath).records == [])
    }

    @Test("the purge after a drain deletes only acknowledged rows when unacknowledged ones remain around them")
    func purgeAroundGaps() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try outage(folder, clock: clock, count: 12, window: 2)
        defer { journal.close() }
        let leased = journal.lease(limit: 10, now: clock.now())
        #expect(leased.seqs == Array(1...10))
        // 4 is refused and released: offered again, so the backlog is not over.
        journal.acknowledge([1, 2, 3, 5, 6, 8, 9, 10, 7])
        journal.release([4])
        try journal.flush()
        #expect(journal.stats().ackedInFile == 9)
        #expect(try FileRows(folder.journalPath).acked == [[1, 3], [5, 10]])
        // 4 acknowledged: no file-only row is left; 11 and 12 (in memory, written) keep their rows.
        #expect(journal.lease(limit: 1, now: clock.now()).seqs == [4])
        journal.acknowledge([4])
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.ackedInFile == 0)
        #expect(stats.pending == 2)
        #expect(stats.ackedTotal == 10)
        #expect(try FileRows(folder.journalPath).records == [11, 12])
        #expect(try FileRows(folder.journalPath).acked == [])
    }

    @Test("a crash after the acknowledgements committed: the reopened journal sends none of them again")
    func crashBeforePurge() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try outage(folder, clock: clock, count: 20, window: 5)
        journal.acknowledge(journal.lease(limit: 8, now: clock.now()).seqs)
        try journal.flush()
        // What a SIGKILL leaves: the files as they are, the journal never closed.
        let copy = try TempFolder()
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: folder.journalPath + suffix) {
            try FileManager.default.copyItem(atPath: folder.journalPath + suffix, toPath: copy.journalPath + suffix)
        }
        journal.close()

        let reopened = try Journal(config: testConfig(copy), clock: clock, logger: quietLogger)
        defer { reopened.close() }
        let stats = reopened.stats()
        #expect(stats.pending == 12)
        #expect(stats.ackedInFile == 8)
        #expect(stats.ackedTotal == 8)
        let leased = reopened.lease(limit: 100, now: clock.now())
        #expect(leased.seqs == Array(9...20))
        reopened.acknowledge(leased.seqs)
        try reopened.flush()
        #expect(reopened.stats().ackedInFile == 0)
        #expect(try FileRows(copy.journalPath).records == [])
        #expect(try FileRows(copy.journalPath).acked == [])
    }

    @Test("a damaged acked table (overlaps, a range upside down, one at the top of the numbers) counts each row once")
    func damagedAckedTable() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try outage(folder, clock: clock, count: 20, window: 5)
        journal.acknowledge(journal.lease(limit: 8, now: clock.now()).seqs)
        try journal.flush()
        journal.close()
        do {
            let db = try SQLiteConnection(path: folder.journalPath, readOnly: false)
            defer { db.close() }
            try db.execute(
                "INSERT INTO acked (lo, hi) VALUES (2, 6), (7, 3), (300, 9223372036854775807), (-5, 2)")
        }
        let reopened = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { reopened.close() }
        let stats = reopened.stats()
        #expect(stats.pending == 12)
        #expect(stats.ackedInFile == 8)
        let read = try JournalReader(path: folder.journalPath).stats()
        #expect(read.pending == 12)
        #expect(read.ackedInFile == 8)
        #expect(reopened.lease(limit: 100, now: clock.now()).seqs == Array(9...20))
    }

    @Test("deferred rows that pass the age bound are deleted at the next commit, and nothing pending is dropped")
    func agedDeferredRowsPurged() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let start = clock.now()
        let journal = try Journal(
            config: testConfig(folder, maxAge: .minutes(30)), clock: clock, logger: quietLogger, memoryWindow: 5)
        defer { journal.close() }
        for i in 0..<20 { journal.append([message(.telemetry, at: start + Int64(i) * 60_000)]) }
        try journal.flush()
        clock.advance(.minutes(21))
        journal.acknowledge(journal.lease(limit: 8, now: clock.now()).seqs)
        try journal.flush()
        #expect(journal.stats().ackedInFile == 8)
        // 15 minutes on, readings 1 to 6 are older than 30 minutes; the pending ones (9 on) are not.
        clock.advance(.minutes(15))
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.ackedInFile == 0)
        #expect(stats.dropsTotal == 0)
        #expect(stats.pending == 12)
        #expect(try FileRows(folder.journalPath).records == Array(9...20))
    }

    @Test("a size bound that deferred rows would pass purges them first and drops nothing")
    func boundPurgesFirst() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        // Sized after the fact: 20 equal records, the bound set to hold 14 of them.
        let probe = try outage(try TempFolder(), clock: TestClock(), count: 20, window: 5)
        let perRecord = probe.stats().bytes / 20
        probe.close()
        let journal = try Journal(
            config: testConfig(folder, maxBytes: perRecord * 14), clock: clock, logger: quietLogger, memoryWindow: 5)
        defer { journal.close() }
        let start = clock.now()
        for i in 0..<12 { journal.append([message(.telemetry, at: start + Int64(i) * 60_000)]) }
        try journal.flush()
        clock.advance(.minutes(13))
        let leased = journal.lease(limit: 6, now: clock.now())
        journal.acknowledge(leased.seqs)
        try journal.flush()
        #expect(journal.stats().ackedInFile == 6)
        // 6 acknowledged rows and 6 pending in the file, 4 more to write: 16 rows would pass the bound of 14.
        for i in 12..<16 { journal.append([message(.telemetry, at: start + Int64(i) * 60_000)]) }
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.dropsTotal == 0)
        #expect(stats.ackedInFile == 0)
        #expect(stats.pending == 10)
        #expect(try FileRows(folder.journalPath).records == Array(7...16))
    }

    @Test("a range set finds the first and last number outside it around a given one")
    func rangeSetNeighbours() {
        var set = RangeSet<Int64>()
        for seq: Int64 in [3, 4, 5, 9, 10] { set.insert(seq) }
        #expect(set.ranges.count == 2)
        #expect(set.firstOutside(after: 0) == 1)
        #expect(set.firstOutside(after: 2) == 6)
        #expect(set.firstOutside(after: 4) == 6)
        #expect(set.firstOutside(after: 8) == 11)
        #expect(set.firstOutside(after: 10) == 11)
        #expect(set.lastOutside(before: 11) == 8)
        #expect(set.lastOutside(before: 6) == 2)
        #expect(set.lastOutside(before: 3) == 2)
        #expect(RangeSet<Int64>().firstOutside(after: 7) == 8)
    }
}
