import PantauCore
import Synchronization

/// Read-only access to a journal for `pantau journal stats|peek|export`, safe while the daemon writes (WAL lets a
/// reader see the last committed state without blocking the writer).
public final class JournalReader: Sendable {
    /// The journal file.
    public let path: String
    private let db: Mutex<SQLiteConnection>

    /// Opens the journal at `path` read-only; it must exist.
    public init(path: String) throws(JournalError) {
        guard JournalFiles.exists(path) else {
            throw JournalError(code: .notFound, message: "no journal at this path (see journal.path)", path: path)
        }
        self.path = path
        do {
            let connection = try SQLiteConnection(path: path, readOnly: true)
            let version = try connection.scalar("PRAGMA user_version") ?? 0
            guard version <= JournalSchema.version else {
                throw JournalError(
                    code: .storage, message: "schema version \(version) is newer than this pantau supports", path: path)
            }
            db = Mutex(connection)
        } catch let error as SQLiteError {
            throw JournalError(.cannotOpen, error, path: path)
        } catch let error as JournalError {
            throw error
        } catch {
            throw JournalError(code: .cannotOpen, message: "\(error)", path: path)
        }
    }

    /// Counters and sizes as committed; writer-only fields (queued, leased, transactions, disk full) are zero.
    public func stats() throws(JournalError) -> JournalStats {
        try read { db throws(SQLiteError) in
            var pending = Dictionary(uniqueKeysWithValues: MessageKind.allCases.map { ($0, 0) })
            var bytes: Int64 = 0
            let counts = try db.prepare("SELECT kind, count(*), total(size) FROM records GROUP BY kind")
            while try counts.step() {
                guard let kind = MessageKind(rawValue: Int(counts.int64(0))) else { continue }
                pending[kind] = Int(counts.int64(1))
                bytes += counts.int64(2)
            }
            // Acknowledged rows whose deletes are deferred are counted apart, not as pending.
            let acked = try JournalSchema.ackedRanges(db)
            var ackedInFile = 0
            for part in try JournalSchema.rowsIn(db, acked) {
                pending[part.kind, default: 0] -= part.rows
                bytes -= part.bytes
                ackedInFile += part.rows
            }
            let facts = try JournalQueries.diskFacts(db, skipping: acked)
            var dropsByDevice: [String: Int64] = [:]
            var dropsByKind: [MessageKind: Int64] = [:]
            for (key, count) in try JournalSchema.drops(db) {
                dropsByDevice[key.device, default: 0] += count
                dropsByKind[key.kind, default: 0] += count
            }
            var stats = JournalStats(
                path: path, pendingByKind: pending, bytes: bytes, fileBytes: facts.fileBytes,
                oldestPendingAcquiredAt: facts.oldestAcquiredAt,
                committedTotal: try JournalSchema.metaValue(db, "committed_total"),
                ackedTotal: try JournalSchema.metaValue(db, "acked_total"), dropsByDevice: dropsByDevice,
                dropsByKind: dropsByKind, lastCommitError: nil, diskFull: false, pendingSeqRange: facts.seqRange,
                lastIssuedSeq: try JournalSchema.metaValue(db, "last_seq"), queued: 0, leased: 0, transactions: 0)
            stats.lostInCrash = try JournalSchema.metaValue(db, "lost_in_crash")
            stats.ackedInFile = ackedInFile
            return stats
        }
    }

    /// The next records the publisher would send: alerts, then status, then data, each by sequence.
    public func peek(limit: Int = 20, kind: MessageKind? = nil, device: String? = nil) throws(JournalError)
        -> [JournalRecord]
    {
        var records: [JournalRecord] = []
        let filter = JournalFilter(kind: kind, device: device, limit: limit)
        try select(filter, orderBy: "lane, seq") { records.append($0) }
        return records
    }

    /// Streams the matching records in sequence order as CSV or JSON Lines, one line per `write` call (the CSV
    /// header first). Returns the number of records written.
    @discardableResult
    public func export(
        format: JournalExportFormat, filter: JournalFilter = JournalFilter(), to write: (String) -> Void
    ) throws(JournalError) -> Int {
        if format == .csv { write(JournalExport.csvHeader) }
        var count = 0
        try select(filter, orderBy: "seq") { record in
            write(format == .csv ? JournalExport.csvLine(record) : JournalExport.jsonLine(record))
            count += 1
        }
        return count
    }

    private func select(
        _ filter: JournalFilter, orderBy order: String, _ each: (JournalRecord) -> Void
    ) throws(JournalError) {
        try read { db throws(SQLiteError) in
            // Acknowledged rows whose deletes are deferred are not pending: left out.
            let acked = try JournalSchema.ackedRanges(db)
            let notAcked = acked.isEmpty ? "" : "AND NOT EXISTS (SELECT 1 FROM acked WHERE seq BETWEEN lo AND hi) "
            let statement = try db.prepare(
                "SELECT \(JournalSchema.recordColumns) FROM records WHERE (?1 IS NULL OR kind = ?1) "
                    + "AND (?2 IS NULL OR device = ?2) AND (?3 IS NULL OR acquired_at >= ?3) "
                    + "AND (?4 IS NULL OR acquired_at < ?4) \(notAcked)ORDER BY \(order) LIMIT ?5")
            try statement.bind(
                filter.kind.map { .integer(Int64($0.rawValue)) } ?? .null, .optionalText(filter.device),
                filter.since.map(SQLiteValue.integer) ?? .null, filter.until.map(SQLiteValue.integer) ?? .null,
                .integer(Int64(filter.limit ?? -1)))
            while try statement.step() { each(JournalSchema.record(statement)) }
        }
    }

    /// Runs `body` in one read transaction, so every query sees the same committed state.
    private func read<T>(_ body: (SQLiteConnection) throws(SQLiteError) -> T) throws(JournalError) -> T {
        try db.withLock { db throws(JournalError) -> T in
            do throws(SQLiteError) {
                try db.execute("BEGIN")
                defer { try? db.execute("COMMIT") }
                return try body(db)
            } catch {
                throw JournalError(.storage, error, path: path)
            }
        }
    }
}
