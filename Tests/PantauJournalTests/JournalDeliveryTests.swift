import PantauCore
import Testing

@testable import PantauJournal

@Suite("Journal delivery order, leases and backlog pacing")
struct JournalDeliveryTests {
    @Test("alerts first, then status, then data by sequence")
    func deliveryOrder() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let now = clock.now()
        try journal.commit([
            message(.telemetry, at: now), message(.alert, at: now), message(.status, device: nil, at: now),
            message(.aggregate, at: now), message(.alert, device: "wl-02", at: now), message(.telemetry, at: now),
        ])
        let leased = journal.lease(limit: 10, now: now)
        #expect(leased.seqs == [2, 5, 3, 1, 4, 6])
        #expect(leased.map(\.record.message.kind) == [.alert, .alert, .status, .telemetry, .aggregate, .telemetry])
        #expect(leased.allSatisfy { !$0.historical })
    }

    @Test("a leased record is not offered again until released; acknowledged records leave the journal")
    func leaseReleaseAcknowledge() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let now = clock.now()
        try journal.commit((0..<4).map { _ in message(.telemetry, at: now) })

        #expect(journal.lease(limit: 2, now: now).seqs == [1, 2])
        #expect(journal.lease(limit: 2, now: now).seqs == [3, 4])
        #expect(journal.lease(limit: 2, now: now).isEmpty)
        #expect(journal.stats().leased == 4)

        journal.release([3, 1])
        #expect(journal.lease(limit: 10, now: now).seqs == [1, 3])

        journal.acknowledge([1, 2])
        journal.release([3, 4])
        // Acknowledged but not yet deleted (no commit since): never offered again.
        #expect(journal.lease(limit: 10, now: now).seqs == [3, 4])
        try journal.flush()
        let stats = journal.stats()
        #expect(stats.pendingByKind[.telemetry] == 2)
        #expect(stats.ackedTotal == 2)
        #expect(stats.pendingSeqRange == 3...4)

        journal.acknowledge([3, 4])
        try journal.flush()
        #expect(journal.stats().pending == 0)
        #expect(journal.lease(limit: 10, now: now).isEmpty)
    }

    @Test("backlog is delivered oldest first and marked historical; live data is not")
    func historicalFlag() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let start = clock.now()
        // An outage: readings every 10 minutes, nothing leased.
        for i in 0..<3 { try journal.commit([message(.telemetry, at: start + Int64(i) * 600_000)]) }
        try journal.commit([message(.alert, at: start)])
        clock.advance(.minutes(30))
        let now = clock.now()
        try journal.commit([message(.telemetry, at: now)])

        let leased = journal.lease(limit: 10, now: now)
        #expect(leased.seqs == [4, 5, 1, 2, 3])
        #expect(leased.map(\.historical) == [true, false, true, true, true])
        #expect(leased.map(\.record.message.acquiredAt) == [start, now, start, start + 600_000, start + 1_200_000])
    }

    @Test(
        "the backlog gets its configured share of the slots while live data flows",
        arguments: [
            (0.5, "LBLBLBLB"), (0.25, "LLLBLLLB"), (0.75, "LBBBLBBB"), (1.0, "BBBBBBBB"), (0.0, "LLLLLLLL"),
        ])
    func backlogShare(share: Double, pattern: String) throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder, backlogShare: share), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let now = clock.now()
        try journal.commit((0..<8).map { i in message(.telemetry, at: now - 3_600_000 + Int64(i) * 1000) })
        try journal.commit((0..<8).map { _ in message(.telemetry, device: "aq-02", at: now) })

        // One slot per lease, as a publisher with a window of one would ask: the share holds across calls.
        var lanes = ""
        var backlogSeqs: [Int64] = []
        for _ in 0..<8 {
            let delivery = try #require(journal.lease(limit: 1, now: now).first)
            lanes += delivery.historical ? "B" : "L"
            if delivery.historical { backlogSeqs.append(delivery.record.seq) }
        }
        #expect(lanes == pattern)
        // The backlog (seqs 1...8) goes oldest first, so its slots took exactly the first seqs.
        #expect(backlogSeqs == Array(Int64(1)...Int64(8)).prefix(pattern.filter { $0 == "B" }.count).map { $0 })
    }

    @Test("with only backlog pending, it gets every slot")
    func onlyBacklog() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder, backlogShare: 0.1), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let now = clock.now()
        try journal.commit((0..<5).map { i in message(.telemetry, at: now - 86_400_000 + Int64(i)) })
        let leased = journal.lease(limit: 5, now: now)
        #expect(leased.seqs == [1, 2, 3, 4, 5])
        #expect(leased.allSatisfy { $0.historical })
    }

    @Test("a record that ages out of the live window while waiting is still delivered, as backlog")
    func agedLiveRecord() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder, backlogShare: 1), clock: clock, logger: quietLogger)
        defer { journal.close() }
        let now = clock.now()
        // seq 1 is live now, seq 2 was acquired long ago but appended later (a device's own buffer): the backlog
        // lane moves past seq 1 while it is still live.
        try journal.commit([message(.telemetry, at: now), message(.telemetry, at: now - 7_200_000)])
        let first = journal.lease(limit: 1, now: now)
        #expect(first.seqs == [2])
        #expect(first.map(\.historical) == [true])
        let later = now + 120_000
        let rest = journal.lease(limit: 5, now: later)
        #expect(rest.seqs == [1])
        #expect(rest.map(\.historical) == [true])
    }
}
