import PantauCore

/// Sequence numbers are assigned at acquisition, before anything is written, so the journal reserves them ahead in
/// its `meta` table: `reserved_seq` is the highest number that may have been issued. Each commit records
/// `accounted_seq`, below which every number was written, acknowledged or counted as a drop.
///
/// At open, a file whose `reserved_seq` is above its `accounted_seq` was not closed cleanly: the numbers between
/// the two were reserved and possibly issued, but never accounted for. Some reached the broker (acknowledged before
/// their group was written), some were never issued, the rest were lost in the crash; the gateway cannot tell
/// which, so all of them are added to `lost_in_crash`, an upper bound of what a subscriber can miss because of
/// crashes. Numbering then continues above `reserved_seq`: no number is ever issued twice.
struct SequenceReservation {
    /// Numbers reserved per write.
    let chunk: Int64

    /// Reads the bookkeeping (a file from before reservations counts as cleanly closed at its `last_seq`), counts
    /// a crash window, and starts numbering above everything reserved.
    func open(_ db: SQLiteConnection, into state: inout JournalState) throws(SQLiteError) {
        let highestRow = try db.scalar("SELECT max(seq) FROM records") ?? 0
        let legacy = max(try JournalSchema.metaValue(db, "last_seq"), highestRow)
        let reserved = max(try Self.value(db, "reserved_seq") ?? legacy, highestRow)
        let accounted = try Self.value(db, "accounted_seq") ?? legacy
        var lost = try Self.value(db, "lost_in_crash") ?? 0
        if reserved > accounted { lost += reserved - accounted }
        try db.execute("BEGIN IMMEDIATE")
        do {
            let upsert = try db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")
            let values = [
                ("reserved_seq", reserved), ("accounted_seq", reserved), ("last_seq", reserved),
                ("lost_in_crash", lost),
            ]
            for (key, value) in values {
                upsert.reset()
                try upsert.bind(.text(key), .integer(value))
                try upsert.run()
            }
            try db.execute("COMMIT")
        } catch {
            if db.isInTransaction { try? db.execute("ROLLBACK") }
            throw error
        }
        state.lastSeq = reserved
        state.reservedSeq = reserved
        state.accountedSeq = reserved
        state.lostInCrash = lost
    }

    /// Raises `reserved_seq` to `target` in its own small transaction.
    func extend(_ db: SQLiteConnection, to target: Int64) throws(SQLiteError) {
        let statement = try db.cached("UPDATE meta SET value = max(value, ?1) WHERE key = 'reserved_seq'")
        try statement.bind(.integer(target))
        try statement.run()
        statement.reset()
    }

    /// Inside a commit: records the accounted watermark and the reservation the commit leaves behind.
    func record(_ db: SQLiteConnection, accounted: Int64, reserved: Int64) throws(SQLiteError) {
        let statement = try db.cached("UPDATE meta SET value = ?2 WHERE key = ?1")
        for (key, value) in [("accounted_seq", accounted), ("last_seq", accounted), ("reserved_seq", reserved)] {
            statement.reset()
            try statement.bind(.text(key), .integer(value))
            try statement.run()
        }
        statement.reset()
    }

    private static func value(_ db: SQLiteConnection, _ key: String) throws(SQLiteError) -> Int64? {
        let statement = try db.prepare("SELECT value FROM meta WHERE key = ?1")
        try statement.bind(.text(key))
        return try statement.step() ? statement.int64(0) : nil
    }
}
