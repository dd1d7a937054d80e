import Foundation
import Logging
import PantauCore
import PantauJournal
import Testing

@testable import PantauGateway

/// Issue 14 end to end below the network: the pipeline journals what it stamps on an unsynchronised clock (no broker),
/// the process restarts within the same boot or after a reboot, the clock synchronises, and the journal corrects.
/// What the publisher would then send is read back from the journal.
@Suite struct ClockCorrectionJournalTests {
    static let trueBoot = ClockTrustTests.trueBoot
    let quiet = Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }

    func json(_ m: OutboundMessage) throws -> [String: Any] {
        let any = try JSONSerialization.jsonObject(with: Data(m.body))
        if let pack = any as? [[String: Any]] { return try #require(pack.first) }
        return try #require(any as? [String: Any])
    }

    /// One process: a journal and a pipeline on the board's clock, polled at the given boottimes (seconds), with
    /// `steps` moving the wall clock before a poll; the value of each reading is its boottime in seconds.
    func process(
        _ board: ClockTrustBoard, journalPath: String, polls: [Int64], steps: [Int64: Int64],
        policy: UnsyncedTimePolicy = .mark, then: (ReadingPipeline, Journal) throws -> Void = { _, _ in }
    ) throws {
        let journal = try Journal(
            config: JournalConfig(path: journalPath, durability: .normal), clock: board, logger: quiet)
        defer { journal.close() }
        let pipeline = ClockTrustTests.pipeline(ClockTrustTests().config(policy), journal, board, logger: quiet)
        for s in polls {
            board.set { b in
                b.boottime = s * 1000
                if let offset = steps[s] { b.wallOffset = offset }
            }
            let t = board.now()
            pipeline.handle(ClockTrustTests.poll(Double(s), at: t))
            pipeline.tick()
            if let c = pipeline.takeTimeCorrection() { journal.correctTimes(bootId: c.bootId, offset: c.offset) }
        }
        try then(pipeline, journal)
    }

    func minutes(_ from: Int64, _ to: Int64) -> [Int64] { Array(stride(from: from, through: to, by: 60)) }

    /// Everything the publisher could lease now, released again: what would go out before the synchronisation.
    func leasable(_ journal: Journal, now: UnixMillis) -> [OutboundMessage] {
        let batch = journal.lease(limit: 10_000, now: now)
        journal.release(batch.map(\.record.seq))
        return batch.map(\.record.message)
    }

    func run(reboot: Bool, policy: UnsyncedTimePolicy = .mark) throws -> [OutboundMessage] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pantau-cc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.path + "/journal.sqlite"
        let board = ClockTrustBoard()
        // Boot at 1970, unsynchronised; a backward step of the wall clock at 180 s.
        try process(board, journalPath: path, polls: minutes(60, 300), steps: [180: -100_000], policy: policy) {
            _, journal in
            if policy == .hold { #expect(leasable(journal, now: 300_000).filter { $0.kind == .telemetry }.isEmpty) }
        }
        if reboot {
            // Another boot: boottime starts again, the wall clock near the epoch again.
            board.set { b in
                b.bootId = "boot-2"
                b.wallOffset = 0
            }
        }
        var leased: [OutboundMessage] = []
        // The process restarts; a forward step at 420 s; the clock synchronises at 630 s.
        try process(board, journalPath: path, polls: minutes(360, 600), steps: [420: 3_600_000], policy: policy) {
            pipeline, journal in
            // Under `hold`, nothing of the telemetry held by either process goes out before the synchronisation
            // (an earlier boot's is released at once, marked `unverified`: no synchronisation can correct it).
            if policy == .hold {
                let early = leasable(journal, now: 3_600_000).filter { $0.kind == .telemetry }
                #expect(
                    try early.map { try json($0)["tq"] as? String }
                        == (reboot ? Array(repeating: "unverified", count: 5) : []))
                #expect(pipeline.clockStatus().held == 5)
            }
            board.synchronise(atBoottime: 630_000)
            pipeline.tick()
            let c = try #require(pipeline.takeTimeCorrection())
            #expect(
                c
                    == ReadingPipeline.TimeCorrectionRequest(
                        bootId: reboot ? "boot-2" : "boot-1", offset: Self.trueBoot))
            journal.correctTimes(bootId: c.bootId, offset: c.offset)
            var batch = journal.lease(limit: 1000, now: Self.trueBoot + 630_000)
            while !batch.isEmpty {
                leased += batch.map(\.record.message)
                journal.acknowledge(batch.map(\.record.seq))
                batch = journal.lease(limit: 1000, now: Self.trueBoot + 630_000)
            }
        }
        return leased
    }

    /// Same boot: every reading, before and after the restart, through a backward and a forward step, reaches the
    /// publisher with its true acquisition time; every one-minute aggregate covers exactly its one reading.
    @Test func sameBootRestartThenSyncCorrectsEverything() throws {
        let messages = try run(reboot: false)
        let telemetry = messages.filter { $0.kind == .telemetry }
        #expect(telemetry.count == 10)
        for m in telemetry {
            let r = try json(m)
            let boottime = Int64(try #require(r["v"] as? Double)) * 1000
            #expect(r["tq"] as? String == "corrected")
            #expect(Int64(((r["bt"] as? Double ?? 0) * 1000).rounded()) == Self.trueBoot + boottime)
            #expect(m.acquiredAt == Self.trueBoot + boottime)
        }
        try checkAggregates(messages, from: 60)
    }

    /// A reboot in between: the first boot's readings keep their unsynchronised dates, marked `unverified`; the
    /// second boot's are corrected.
    @Test func rebootInBetweenMarksTheEarlierBoot() throws {
        let messages = try run(reboot: true)
        let telemetry = messages.filter { $0.kind == .telemetry }
        #expect(telemetry.count == 10)
        for m in telemetry {
            let r = try json(m)
            let boottime = Int64(try #require(r["v"] as? Double)) * 1000
            let bt = Int64(((r["bt"] as? Double ?? 0) * 1000).rounded())
            if boottime <= 300_000 {
                #expect(r["tq"] as? String == "unverified")
                #expect(bt == boottime)  // the first boot's timeline: never shifted
            } else {
                #expect(r["tq"] as? String == "corrected")
                #expect(bt == Self.trueBoot + boottime)
            }
        }
        try checkAggregates(messages.filter { $0.stamp?.quality != .unverified }, from: 360)
    }

    /// `time.unsynced: hold` (issue 14): the held telemetry is journaled, so a restart within the same boot loses
    /// none of it; nothing of it is offered before the synchronisation; then all of it, of both processes, goes out
    /// with its true time (`tq: corrected`).
    @Test func heldTelemetrySurvivesARestartAndIsCorrectedAtSync() throws {
        let messages = try run(reboot: false, policy: .hold)
        let telemetry = messages.filter { $0.kind == .telemetry }
        #expect(telemetry.count == 10)
        for m in telemetry {
            let r = try json(m)
            let boottime = Int64(try #require(r["v"] as? Double)) * 1000
            #expect(r["tq"] as? String == "corrected")
            #expect(Int64(((r["bt"] as? Double ?? 0) * 1000).rounded()) == Self.trueBoot + boottime)
        }
        #expect(
            Set(try telemetry.map { try #require(json($0)["v"] as? Double) }) == Set((1...10).map { Double($0 * 60) }))
        try checkAggregates(messages, from: 60)
    }

    /// Held telemetry of an earlier boot is released at the synchronisation marked `unverified`, never shifted.
    @Test func heldTelemetryOfAnEarlierBootIsReleasedUnverified() throws {
        let messages = try run(reboot: true, policy: .hold)
        let telemetry = messages.filter { $0.kind == .telemetry }
        #expect(telemetry.count == 10)
        for m in telemetry {
            let r = try json(m)
            let boottime = Int64(try #require(r["v"] as? Double)) * 1000
            let bt = Int64(((r["bt"] as? Double ?? 0) * 1000).rounded())
            #expect(r["tq"] as? String == (boottime <= 300_000 ? "unverified" : "corrected"))
            #expect(bt == (boottime <= 300_000 ? boottime : Self.trueBoot + boottime))
        }
    }

    /// One-minute aggregates on true times: each holds exactly one reading, whose value says its boottime.
    func checkAggregates(_ messages: [OutboundMessage], from first: Int64) throws {
        let minutes = try messages.filter { $0.kind == .aggregate }.map { try json($0) }
            .filter { $0["window"] as? String == "1m" && ($0["tq"] as? String) != "unverified" }
        #expect(minutes.count >= 4)
        var seen: Set<Int64> = []
        for a in minutes {
            let start = try #require(a["start"] as? Int64)
            let end = try #require(a["end"] as? Int64)
            let at = try #require(a["first_at"] as? Int64)
            #expect(a["count"] as? Int == 1)
            #expect(a["last_at"] as? Int64 == at)
            #expect(end - start == 60_000)
            #expect(start <= at && at < end)
            let boottime = Int64(try #require(a["mean"] as? Double)) * 1000
            #expect(at == Self.trueBoot + boottime, "\(a)")
            #expect(a["tq"] as? String == "corrected")
            seen.insert(boottime)
        }
        #expect(seen.isSubset(of: Set(stride(from: first * 1000, through: 600_000, by: 60_000))))
    }
}
