import Foundation
import PantauCore
import Testing

@testable import PantauJournal

@Suite("Journal internals: query plans, memory shedding, lifecycle")
struct JournalInternalsTests {
    @Test(
        "lease and bound queries use an index, never a full scan of the records",
        arguments: [
            LeasePlanner.byLaneSQL, JournalBounds.agedSQL, JournalBounds.oldestSQL, JournalBounds.deleteSQL,
        ])
    func queryPlans(sql: String) throws {
        let folder = try TempFolder()
        let journal = try Journal(config: testConfig(folder), clock: TestClock(), logger: quietLogger)
        journal.close()
        let db = try SQLiteConnection(path: folder.journalPath, readOnly: false)
        let plan = try db.prepare("EXPLAIN QUERY PLAN " + sql)
        var details: [String] = []
        while try plan.step() { details.append(plan.text(3) ?? "") }
        #expect(
            details.contains {
                $0.hasPrefix("SEARCH records USING")
                    && ($0.contains("INDEX records_lane_") || $0.contains("INTEGER PRIMARY KEY"))
            })
        #expect(!details.contains { $0.hasPrefix("SCAN records") })
    }

    @Test("while commits fail, memory is bounded: oldest telemetry goes first, counted per device")
    func memoryShedding() {
        var state = JournalState()
        let alerts = (0..<3).map { i in message(.alert, device: "wl-02", at: Int64(i)) }
        let telemetry = (0..<12).map { i in
            message(.telemetry, device: i % 2 == 0 ? "aq-01" : "rg-03", at: Int64(i))
        }
        let status = [message(.status, device: nil, at: 0)]
        for (i, m) in (alerts + telemetry + status).enumerated() { state.memory.insert(seq: Int64(i + 1), m) }
        state.shedMemory(limit: 10)
        // Shed to 90 % of the limit: 16 - 9 = 7 telemetry, the oldest (seqs 4...10).
        #expect(state.memory.entries.keys.sorted() == [1, 2, 3] + Array(11...16))
        #expect(state.memory.unwrittenCount == 9)
        let expected: [DropKey: Int64] = [
            DropKey(device: "aq-01", kind: .telemetry): 4, DropKey(device: "rg-03", kind: .telemetry): 3,
        ]
        #expect(state.drops == expected)
        #expect(state.unpersistedDrops == state.drops)
    }

    @Test("close commits what is queued, is idempotent, and a flush afterwards is an error")
    func closeLifecycle() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        journal.append([message(.alert, at: clock.now())])
        journal.close()
        journal.close()
        #expect(throws: JournalError.self) { try journal.flush() }
        #expect(journal.lease(limit: 5, now: clock.now()).isEmpty)
        #expect(try JournalReader(path: folder.journalPath).stats().pendingByKind[.alert] == 1)
    }
}
