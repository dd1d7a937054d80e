import Foundation
import PantauCore
import Testing

@testable import PantauJournal

/// Copies the journal's files without closing it: what a power cut or SIGKILL leaves behind.
private func crashCopy(of folder: TempFolder) throws -> TempFolder {
    let copy = try TempFolder()
    for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: folder.journalPath + suffix) {
        try FileManager.default.copyItem(atPath: folder.journalPath + suffix, toPath: copy.journalPath + suffix)
    }
    return copy
}

@Suite("Write-behind: memory first, the file holds only what the broker has not acknowledged")
struct WriteBehindTests {
    @Test("a message acknowledged before its group commits is never written")
    func ackedBeforeCommit() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        journal.append((0..<3).map { i in message(.telemetry, at: clock.now() + Int64(i)) })
        let leased = journal.lease(limit: 10, now: clock.now())
        #expect(leased.seqs == [1, 2, 3])
        journal.acknowledge([1, 3])
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.committedTotal == 1)
        #expect(stats.neverWrittenTotal == 2)
        #expect(try JournalReader(path: folder.journalPath).peek().map(\.seq) == [2])
    }

    @Test("a message written and acknowledged later is deleted by the next commit")
    func ackedAfterCommit() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        journal.append((0..<4).map { i in message(.telemetry, at: clock.now() + Int64(i)) })
        try journal.flush()
        #expect(journal.stats().committedTotal == 4)
        #expect(journal.lease(limit: 10, now: clock.now()).seqs == [1, 2, 3, 4])
        journal.acknowledge([1, 2, 3])
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.ackedTotal == 3)
        #expect(stats.pending == 1)
        #expect(stats.neverWrittenTotal == 0)
        #expect(try JournalReader(path: folder.journalPath).peek().map(\.seq) == [4])
    }

    @Test("acknowledgements in runs with gaps delete exactly those rows, counted once, bytes freed exactly")
    func ackedRunsWithGaps() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        journal.append((0..<10).map { i in message(.telemetry, at: clock.now() + Int64(i)) })
        try journal.flush()
        let before = journal.stats()
        #expect(journal.lease(limit: 10, now: clock.now()).seqs == Array(1...10))
        // Out of order, one twice, three runs (1-3, 5, 7-9) around the gaps 4, 6 and 10.
        journal.acknowledge([9, 1, 2, 3, 5, 7, 8, 2])
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.ackedTotal == 7)
        #expect(stats.pending == 3)
        #expect(try JournalReader(path: folder.journalPath).peek().map(\.seq) == [4, 6, 10])
        // Every record has the same size: what is left is three tenths of what was there.
        #expect(stats.bytes * 10 == before.bytes * 3)
    }

    @Test("runs of consecutive numbers: sorted, duplicates once, gaps split them")
    func runs() {
        #expect(consecutiveRuns([]) == [])
        #expect(consecutiveRuns([5]) == [5...5])
        #expect(consecutiveRuns([9, 1, 2, 3, 5, 7, 8, 2]) == [1...3, 5...5, 7...9])
        #expect(consecutiveRuns([4, 4, 4]) == [4...4])
    }

    @Test("an acknowledgement that arrives while its group is being written deletes the row with the next commit")
    func ackedWhileWriting() {
        var memory = DeliveryMemory()
        memory.insert(seq: 1, message(.telemetry, at: 0))
        memory.insert(seq: 2, message(.telemetry, at: 1))
        #expect(memory.takeUnwritten().map(\.seq) == [1, 2])
        #expect(memory.acknowledge(1) == .delete)
        memory.written([1, 2])
        #expect(memory.acknowledge(2) == .delete)
        memory.insert(seq: 3, message(.telemetry, at: 2))
        #expect(memory.acknowledge(3) == .neverWritten)
        #expect(memory.acknowledge(3) == .notInMemory)
        #expect(memory.isEmpty && memory.unwrittenCount == 0)
    }

    @Test("beyond the memory window written messages live in the file only and are read back as backlog, in order")
    func memoryWindow() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(
            config: testConfig(folder), clock: clock, logger: quietLogger, memoryWindow: 5)
        defer { journal.close() }
        let start = clock.now()
        // An outage: 20 readings over 20 minutes, nothing acknowledged.
        for i in 0..<20 { journal.append([message(.telemetry, at: start + Int64(i) * 60_000)]) }
        journal.append([message(.alert, device: "wl-02", at: start)])
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.inMemory == 5)
        #expect(stats.committedTotal == 21)
        clock.advance(.minutes(21))
        let leased = journal.lease(limit: 100, now: clock.now())
        // The alert first, then every reading once, oldest first, from the file and then from memory.
        #expect(leased.seqs == [21] + Array(1...20))
        #expect(leased.allSatisfy { $0.historical })
        journal.acknowledge(leased.seqs)
        try journal.flush()
        #expect(journal.stats().pending == 0)
        #expect(journal.lease(limit: 100, now: clock.now()).isEmpty)
    }

    @Test("while commits fail the memory bound drops exactly the oldest unwritten telemetry, counted per device")
    func memoryBoundDrops() {
        var state = JournalState()
        for i in 1...30 {
            let device = i % 3 == 0 ? "rg-03" : "aq-01"
            state.memory.insert(seq: Int64(i), message(.telemetry, device: device, at: Int64(i)))
        }
        state.memory.insert(seq: 31, message(.alert, device: "wl-02", at: 31))
        state.shedMemory(limit: 20)
        // Down to 18 (90 %): 13 telemetry go, seqs 1...13; 4 of them (3, 6, 9, 12) from rg-03.
        #expect(state.memory.entries.keys.sorted() == Array(14...31))
        #expect(
            state.drops == [
                DropKey(device: "aq-01", kind: .telemetry): 9, DropKey(device: "rg-03", kind: .telemetry): 4,
            ])
    }
}

@Suite("Sequence numbers: reserved ahead, never reused, crash windows counted")
struct SequenceReservationTests {
    @Test("a crash leaves the reserved but unaccounted numbers in lost_in_crash; numbering continues above them")
    func crashWindow() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger, reserveChunk: 10)
        defer { journal.close() }
        journal.append((0..<3).map { i in message(.telemetry, at: clock.now() + Int64(i)) })
        try journal.flush()
        // Issued after the last commit: seq 4 is acknowledged (delivered), seq 5 is not (lost in the crash).
        journal.append([message(.telemetry, at: clock.now()), message(.telemetry, at: clock.now())])
        #expect(journal.lease(limit: 10, now: clock.now()).seqs == [1, 2, 3, 4, 5])
        journal.acknowledge([4])

        let copy = try crashCopy(of: folder)
        let recovered = try Journal(config: testConfig(copy), clock: clock, logger: quietLogger, reserveChunk: 10)
        defer { recovered.close() }
        // Reserved 1...13 with the first append; 1...3 accounted by the commit: 4...13 unaccounted.
        #expect(recovered.stats().lostInCrash == 10)
        #expect(recovered.lease(limit: 10, now: clock.now()).seqs == [1, 2, 3])
        recovered.append([message(.telemetry, at: clock.now())])
        #expect(recovered.lease(limit: 10, now: clock.now()).seqs == [14])
        #expect(try JournalReader(path: copy.journalPath).stats().lostInCrash == 10)
    }

    @Test("a clean close loses nothing and numbering continues without a gap")
    func cleanClose() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        do {
            let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger, reserveChunk: 10)
            journal.append((0..<4).map { i in message(.telemetry, at: clock.now() + Int64(i)) })
            journal.acknowledge(journal.lease(limit: 2, now: clock.now()).seqs)
            journal.close()
        }
        let reopened = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger, reserveChunk: 10)
        defer { reopened.close() }
        #expect(reopened.stats().lostInCrash == 0)
        reopened.append([message(.telemetry, at: clock.now())])
        #expect(reopened.lease(limit: 10, now: clock.now()).seqs.sorted() == [3, 4, 5])
    }

    @Test("numbers past the reserved range are reserved first: a burst larger than a chunk never reuses one")
    func burstBeyondChunk() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger, reserveChunk: 4)
        defer { journal.close() }
        for _ in 0..<5 { journal.append((0..<3).map { _ in message(.telemetry, at: clock.now()) }) }
        let copy = try crashCopy(of: folder)
        let recovered = try Journal(config: testConfig(copy), clock: clock, logger: quietLogger, reserveChunk: 4)
        defer { recovered.close() }
        recovered.append([message(.telemetry, at: clock.now())])
        let next = try #require(recovered.lease(limit: 100, now: clock.now()).seqs.last)
        #expect(next > 15)
        #expect(recovered.stats().lostInCrash == next - 1)
    }
}

@Suite("Journal files are private to the service")
struct JournalFileModeTests {
    @Test("journal, WAL, shared memory and reserve files are 0640 whatever the umask")
    func modes() throws {
        let folder = try TempFolder()
        let old = umask(0o022)
        defer { umask(old) }
        let journal = try Journal(config: testConfig(folder), clock: TestClock(), logger: quietLogger)
        defer { journal.close() }
        try journal.commit([message(.telemetry, at: 0)])
        for suffix in ["", "-wal", "-shm", "-reserve"] {
            var info = stat()
            #expect(stat(folder.journalPath + suffix, &info) == 0, "\(suffix)")
            let mode = info.st_mode & 0o777
            #expect(mode == 0o640, "journal\(suffix) has mode \(String(mode, radix: 8))")
        }
    }
}

@Suite("Bounds on written messages still in memory")
struct WriteBehindBoundTests {
    @Test("the size bound drops written messages from the file and from memory alike, oldest first, exactly")
    func sizeBoundInMemory() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let body = String(repeating: "x", count: 400)
        let size = JournalSchema.size(of: message(.telemetry, at: 0, body: body))
        let journal = try Journal(
            config: testConfig(folder, maxBytes: 10 * size), clock: clock, logger: quietLogger, diskReserve: 0)
        defer { journal.close() }
        journal.append((0..<30).map { i in message(.telemetry, at: clock.now() + Int64(i), body: body) })
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.dropsTotal == 20)
        #expect(stats.pending == 10)
        #expect(stats.inMemory == 10)
        #expect(journal.lease(limit: 100, now: clock.now()).seqs == Array(21...30))
    }
}

@Suite("A bound never drops what the broker acknowledged")
struct AcknowledgedNotDroppedTests {
    /// The chaos test's size bound once counted 657 drops for 646 readings missing at the subscriber: an
    /// acknowledgement for a written message still in memory arrived while a commit was under way, and that
    /// commit's bound deleted the row as a drop.
    @Test("a written message acknowledged from memory cannot be claimed by a bound before its row is deleted")
    func writtenAckedFromMemory() {
        var state = JournalState()
        state.memory.insert(seq: 1, message(.telemetry, at: 0))
        state.memory.insert(seq: 2, message(.telemetry, at: 1))
        state.memory.written(state.memory.takeUnwritten().map(\.seq))
        state.memory.markLeased([1, 2])
        state.acknowledge([1])
        #expect(state.acks == [1])
        let ackedClaimed = state.claimForDrop(1)
        #expect(!ackedClaimed)
        // Still leased, unacknowledged: the broker may have it.
        let leasedClaimed = state.claimForDrop(2)
        #expect(!leasedClaimed)
        _ = state.memory.release([2])
        let releasedClaimed = state.claimForDrop(2)
        #expect(releasedClaimed)
        #expect(state.dropping == [2])
        // A row of the file only, never leased: a bound may take it.
        let fileOnlyClaimed = state.claimForDrop(7)
        #expect(fileOnlyClaimed)
    }
}

@Suite("An idle journal runs no SQL")
struct IdleJournalTests {
    @Test("acknowledged before their commit: no statement after the first reservation; unacknowledged: written")
    func noSQLWhenAcknowledged() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(
            config: testConfig(folder, commitInterval: Interval(milliseconds: 20)), clock: clock,
            logger: quietLogger)
        defer { journal.close() }
        func statements() -> Int {
            journal.writerDB.withLock { $0.statementsRun } + journal.readerDB.withLock { $0.statementsRun }
        }
        // The first append reserves the first range of sequence numbers: that is one small write.
        journal.append([message(.telemetry, at: clock.now())])
        journal.acknowledge(journal.lease(limit: 10, now: clock.now()).seqs)
        let before = statements()
        for i in 0..<50 {
            journal.append([message(.telemetry, at: clock.now() + Int64(i))])
            journal.acknowledge(journal.lease(limit: 10, now: clock.now()).seqs)
            // Let the writer's commit interval pass now and then: it wakes, finds nothing to write, and sleeps.
            if i % 10 == 0 { usleep(30_000) }
        }
        #expect(statements() == before)
        #expect(journal.stats().transactions == 0)
        #expect(journal.stats().neverWrittenTotal == 51)

        journal.append([message(.telemetry, at: clock.now())])
        try journal.flush()
        #expect(statements() > before)
        #expect(journal.stats().committedTotal == 1)
    }
}
