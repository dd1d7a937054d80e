import PantauCore

extension Journal {
    /// What `correctTimes` changed: messages in memory and rows in the file (a message can be in both).
    public struct TimeCorrectionCount: Sendable, Hashable {
        public var inMemory = 0
        public var corrected = 0
        public var unverified = 0
    }

    /// Issue 14: once the clock's offset is known, every message still journaled that was stamped `unsynced` on
    /// this boot gets its true times (`tq: corrected`, from its boottime), in memory and in the file, also those an
    /// earlier process of the same boot left; those of another boot are marked `unverified` and never shifted.
    /// With `offset` nil (still unsynchronised) only the other boots' are marked. Waits for one commit: call it from
    /// a thread of ours, not a bus thread.
    @discardableResult
    public func correctTimes(bootId: String, offset: Int64?) -> TimeCorrectionCount {
        var count = TimeCorrectionCount()
        count.inMemory = state.withLock { state in
            state.memory.rewrite { TimeCorrection.corrected($0, bootId: bootId, offset: offset) }
        }
        // A commit under way took its messages before the rewrite and writes their old times: let it end (and
        // commit what is in memory, corrected), then fix the rows.
        do { try flush() } catch {
            logger.warning("journal: time correction deferred, commit failed", metadata: ["error": "\(error)"])
            return count
        }
        writerDB.withLock { db in
            do throws(SQLiteError) {
                try db.execute("BEGIN IMMEDIATE")
                let select = try db.prepare(
                    "SELECT seq, body, acquired_at, boot_id, boottime FROM records WHERE tq = 'unsynced'")
                var changes: [(Int64, OutboundMessage)] = []
                while try select.step() {
                    let row = OutboundMessage(
                        kind: .telemetry, topic: "", body: select.blob(1), device: nil, acquiredAt: select.int64(2),
                        stamp: ClockStamp(
                            bootId: select.text(3) ?? "", boottimeMs: select.int64(4), quality: .unsynced))
                    if let fixed = TimeCorrection.corrected(row, bootId: bootId, offset: offset) {
                        changes.append((select.int64(0), fixed))
                    }
                }
                let update = try db.prepare("UPDATE records SET body = ?2, acquired_at = ?3, tq = ?4 WHERE seq = ?1")
                for (seq, fixed) in changes {
                    update.reset()
                    try update.bind(
                        .integer(seq), .blob(fixed.body), .integer(fixed.acquiredAt),
                        .optionalText(fixed.stamp?.quality?.rawValue))
                    try update.run()
                    if fixed.stamp?.quality == .corrected { count.corrected += 1 } else { count.unverified += 1 }
                }
                try db.execute("COMMIT")
            } catch {
                if db.isInTransaction { try? db.execute("ROLLBACK") }
                count.corrected = 0
                count.unverified = 0
                logger.warning("journal: time correction failed", metadata: ["error": "\(error)"])
            }
        }
        if count.inMemory + count.corrected + count.unverified > 0 {
            logger.notice(
                "journal: times corrected",
                metadata: [
                    "in_memory": "\(count.inMemory)", "corrected": "\(count.corrected)",
                    "unverified": "\(count.unverified)",
                ])
        }
        return count
    }
}
