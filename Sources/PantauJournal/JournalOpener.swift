import Logging
import PantauCore

/// Opening the writer's connection: folder check, WAL, durability, integrity check, schema; a damaged file is
/// moved aside and a fresh journal started so the gateway still runs.
enum JournalOpener {
    struct Opened {
        var connection: SQLiteConnection
        var events: [String]
    }

    private enum Failure: Error {
        case sqlite(SQLiteError)
        case damaged(String)
        case newerSchema(Int64)
    }

    static func openWriter(
        path: String, durability: JournalConfig.Durability, maxPageCount: Int?, clock: any GatewayClock,
        logger: Logger
    ) throws(JournalError) -> Opened {
        let folder = JournalFiles.parentDirectory(of: path)
        guard JournalFiles.isDirectory(folder) else {
            throw JournalError(
                code: .directoryMissing,
                message: "folder \(folder) does not exist: create it (systemd StateDirectory=pantau) or change "
                    + "journal.path", path: path)
        }
        let reason: String
        let tag: String
        do {
            return Opened(connection: try setUp(path, durability, maxPageCount), events: [])
        } catch {
            switch error {
            case .sqlite(let error) where error.isCorruption:
                reason = error.message
                tag = "corrupt"
            case .damaged(let detail):
                reason = "integrity check failed: \(detail)"
                tag = "corrupt"
            case .newerSchema(let version):
                reason = "schema version \(version) is newer than this pantau supports (\(JournalSchema.version))"
                tag = "newer"
            case .sqlite(let error):
                throw JournalError(.cannotOpen, error, path: path)
            }
        }
        guard let movedTo = JournalFiles.moveAside(path, tag: tag, at: clock.now()) else {
            throw JournalError(
                code: .cannotOpen, message: "journal is unusable (\(reason)) and could not be moved aside", path: path)
        }
        let event = "journal \(path) unusable (\(reason)): kept as \(movedTo), a new journal was started"
        logger.error(
            "journal moved aside", metadata: ["path": "\(path)", "moved_to": "\(movedTo)", "reason": "\(reason)"])
        do {
            return Opened(connection: try setUp(path, durability, maxPageCount), events: [event])
        } catch {
            let message: String
            switch error {
            case .sqlite(let e): message = e.description
            case .damaged(let d): message = d
            case .newerSchema(let v): message = "schema \(v)"
            }
            throw JournalError(code: .cannotOpen, message: "fresh journal failed: \(message)", path: path)
        }
    }

    private static func setUp(
        _ path: String, _ durability: JournalConfig.Durability, _ maxPageCount: Int?
    ) throws(Failure) -> SQLiteConnection {
        do {
            JournalFiles.createRestricted(path)
            let db = try SQLiteConnection(path: path, readOnly: false)
            let check = try db.texts("PRAGMA quick_check")
            guard check == ["ok"] else { throw Failure.damaged(check.prefix(3).joined(separator: "; ")) }
            let mode = try db.texts("PRAGMA journal_mode=WAL")
            guard mode == ["wal"] else {
                throw Failure.sqlite(SQLiteError(code: 1, message: "WAL mode refused (journal_mode=\(mode))"))
            }
            try db.execute("PRAGMA synchronous=\(durability == .full ? "FULL" : "NORMAL")")
            // Debian builds SQLite with secure delete on: every deleted row would be overwritten with zeros, a
            // second write of every record the broker acknowledged after it was written (readings are not
            // secrets; the file is the service's alone). FAST zeroes only what costs no extra I/O.
            try db.execute("PRAGMA secure_delete=FAST")
            let version = try db.scalar("PRAGMA user_version") ?? 0
            if version > JournalSchema.version { throw Failure.newerSchema(version) }
            if version < JournalSchema.version {
                try db.execute(
                    "BEGIN IMMEDIATE; \(JournalSchema.upgrade(from: version)) "
                        + "PRAGMA user_version=\(JournalSchema.version); COMMIT")
            }
            if let maxPageCount { try db.execute("PRAGMA max_page_count=\(maxPageCount)") }
            return db
        } catch let error as SQLiteError {
            throw .sqlite(error)
        } catch let error as Failure {
            throw error
        } catch {
            throw .sqlite(SQLiteError(code: 1, message: "\(error)"))
        }
    }
}

/// Facts read from the file rather than kept in memory.
struct DiskFacts {
    var fileBytes: Int64 = 0
    var oldestAcquiredAt: UnixMillis?
    var seqRange: ClosedRange<Int64>?
}

/// Queries shared by the writer's stats and the read-only reader; each uses an index, none scans the table.
enum JournalQueries {
    /// The file's size and its pending rows' oldest time and sequence range; rows in `acked` (acknowledged, their
    /// deletes deferred) are not pending. Without any, one indexed lookup each; with some, the lookups step over
    /// them (the oldest-time walk visits the acknowledged index entries older than the first pending one).
    static func diskFacts(
        _ db: SQLiteConnection, skipping acked: RangeSet<Int64> = RangeSet()
    ) throws(SQLiteError) -> DiskFacts {
        var facts = DiskFacts()
        facts.fileBytes = (try db.scalar("PRAGMA page_count") ?? 0) * (try db.scalar("PRAGMA page_size") ?? 0)
        let oldest = try db.prepare(
            "SELECT seq, acquired_at FROM records INDEXED BY records_lane_acquired WHERE lane = ?1 "
                + "ORDER BY acquired_at")
        for lane in Lane.allCases {
            oldest.reset()
            try oldest.bind(.integer(lane.rawValue))
            while try oldest.step() {
                guard acked.contains(oldest.int64(0)) else {
                    facts.oldestAcquiredAt = min(facts.oldestAcquiredAt ?? oldest.int64(1), oldest.int64(1))
                    break
                }
            }
        }
        oldest.reset()
        let low = try pendingSeq(db, "SELECT min(seq) FROM records WHERE seq > ?1", from: .min, acked) {
            acked.firstOutside(after: $0) - 1
        }
        let high = try pendingSeq(db, "SELECT max(seq) FROM records WHERE seq < ?1", from: .max, acked) {
            acked.lastOutside(before: $0) + 1
        }
        guard let low, let high
        else { return facts }
        facts.seqRange = low...high
        return facts
    }

    /// The first row `next` finds from `start` that is not acknowledged, stepping over acknowledged ranges (`past`
    /// gives where the next lookup starts from an acknowledged row); nil when there is none.
    private static func pendingSeq(
        _ db: SQLiteConnection, _ next: String, from start: Int64, _ acked: RangeSet<Int64>,
        past: (Int64) -> Int64
    ) throws(SQLiteError) -> Int64? {
        let lookup = try db.prepare(next)
        var from = start
        while true {
            lookup.reset()
            try lookup.bind(.integer(from))
            guard try lookup.step(), !lookup.isNull(0) else { return nil }
            let seq = lookup.int64(0)
            guard acked.contains(seq) else { return seq }
            from = past(seq)
        }
    }
}
