/// Small named blobs kept beside the records, for state that must survive a restart with the backlog (the
/// pipeline's open windows, index averages and alert levels).
extension Journal {
    /// Stores `value` under `key`, replacing what was there. Failures are logged, never thrown: losing this state
    /// costs an hour's window, not a reading.
    public func saveState(key: String, _ value: [UInt8]) {
        do {
            try writerDB.withLock { db throws(SQLiteError) in
                let statement = try db.prepare("INSERT OR REPLACE INTO state(key, value) VALUES (?1, ?2)")
                try statement.bind(.text(key), .blob(value))
                try statement.run()
            }
        } catch {
            logger.warning("journal: cannot save state", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    /// What `saveState` stored under `key`, or nil.
    public func loadState(key: String) -> [UInt8]? {
        do {
            return try readerDB.withLock { db throws(SQLiteError) -> [UInt8]? in
                let statement = try db.prepare("SELECT value FROM state WHERE key = ?1")
                try statement.bind(.text(key))
                return try statement.step() ? statement.blob(0) : nil
            }
        } catch {
            logger.warning("journal: cannot load state", metadata: ["key": "\(key)", "error": "\(error)"])
            return nil
        }
    }
}
