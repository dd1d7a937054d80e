import PantauCore
import Testing

@testable import PantauJournal

@Suite struct JournalStateTests {
    @Test func savedStateSurvivesARestartAndIsReplaced() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        do {
            let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
            #expect(journal.loadState(key: "pipeline") == nil)
            journal.saveState(key: "pipeline", Array("first".utf8))
            journal.saveState(key: "pipeline", Array("second".utf8))
            journal.saveState(key: "other", [0, 1, 2])
            journal.close()
        }
        let reopened = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        #expect(reopened.loadState(key: "pipeline") == Array("second".utf8))
        #expect(reopened.loadState(key: "other") == [0, 1, 2])
        reopened.close()
    }
}

@Suite struct JournalInFlightBoundTests {
    /// A record the broker may already have must not be dropped by a bound: its PUBACK would free nothing and the
    /// drop count would call a delivered reading lost.
    @Test func theSizeBoundNeverDropsRecordsInFlight() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let body = String(repeating: "x", count: 400)
        let size = Int64(body.utf8.count + 100)
        let journal = try Journal(
            config: testConfig(folder, maxBytes: 20 * size), clock: clock, logger: quietLogger, diskReserve: 0)
        try journal.commit((0..<10).map { i in message(.telemetry, at: clock.now() + Int64(i), body: body) })
        let inFlight = journal.lease(limit: 3, now: clock.now()).map(\.record.seq)
        #expect(inFlight == [1, 2, 3])
        // Far past the bound: the oldest records would go first, but the three in flight stay.
        try journal.commit((0..<30).map { i in message(.telemetry, at: clock.now() + 100 + Int64(i), body: body) })
        let stats = journal.stats()
        #expect(stats.dropsTotal > 0)
        #expect(stats.pendingSeqRange?.lowerBound == 1)
        journal.acknowledge(inFlight)
        try journal.flush()
        let after = journal.stats()
        #expect(after.ackedTotal == 3)
        #expect(after.committedTotal == 40)
        #expect(Int64(after.pending) + after.dropsTotal + after.ackedTotal == 40)
        journal.close()
    }
}
