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
    /// Held telemetry (`tq` held, `time.unsynced: hold`) is released the same way: to the data lane, corrected or
    /// marked `unverified`; of this boot it stays held while the offset is unknown.
    /// With `offset` nil (still unsynchronised) only the other boots' are marked. Waits for one commit: call it from
    /// a thread of ours, not a bus thread.
    @discardableResult
    public func correctTimes(bootId: String, offset: Int64?) -> TimeCorrectionCount {
        var count = TimeCorrectionCount()
        // Held entries in memory move lanes with the rewrite (an eviction after it counts them as data already).
        var heldInMemory: Set<Int64> = []
        count.inMemory = state.withLock { state in
            heldInMemory = Set(state.memory.entries.compactMap { $0.value.lane == .held ? $0.key : nil })
            return state.memory.rewrite { TimeCorrection.corrected($0, bootId: bootId, offset: offset) }
        }
        // A commit under way took its messages before the rewrite and writes their old times: let it end (and
        // commit what is in memory, corrected), then fix the rows.
        do { try flush() } catch {
            logger.warning("journal: time correction deferred, commit failed", metadata: ["error": "\(error)"])
            return count
        }
        var released: [JournalRecord] = []
        writerDB.withLock { db in
            do throws(SQLiteError) {
                try db.execute("BEGIN IMMEDIATE")
                var changes: [(Int64, OutboundMessage, Bool)] = []
                for quality in [TimeQuality.unsynced, .held] {
                    let select = try db.prepare(
                        "SELECT \(JournalSchema.recordColumns), boot_id, boottime FROM records WHERE tq = ?1")
                    try select.bind(.text(quality.rawValue))
                    while try select.step() {
                        var row = JournalSchema.record(select).message
                        row.stamp = ClockStamp(
                            bootId: select.text(9) ?? "", boottimeMs: select.int64(10), quality: quality)
                        if let fixed = TimeCorrection.corrected(row, bootId: bootId, offset: offset) {
                            changes.append((select.int64(0), fixed, quality == .held))
                        }
                    }
                }
                // A held row leaves its lane for the data lane.
                let update = try db.prepare(
                    "UPDATE records SET body = ?2, acquired_at = ?3, tq = ?4, "
                        + "lane = CASE WHEN lane = ?5 THEN ?6 ELSE lane END WHERE seq = ?1")
                for (seq, fixed, held) in changes {
                    update.reset()
                    try update.bind(
                        .integer(seq), .blob(fixed.body), .integer(fixed.acquiredAt),
                        .optionalText(fixed.stamp?.quality?.rawValue), .integer(Lane.held.rawValue),
                        .integer(Lane.data.rawValue))
                    try update.run()
                    if held, !heldInMemory.contains(seq) { released.append(JournalRecord(seq: seq, message: fixed)) }
                    if fixed.stamp?.quality == .corrected { count.corrected += 1 } else { count.unverified += 1 }
                }
                // Held rows only the file held are offered from memory (before the rows show in the data lane, so a
                // file lease cannot take them too); their rows are deleted when acknowledged, like any written one.
                released = readBack(released)
                do throws(SQLiteError) { try db.execute("COMMIT") } catch {
                    forget(released)
                    throw error
                }
            } catch {
                if db.isInTransaction { try? db.execute("ROLLBACK") }
                count.corrected = 0
                count.unverified = 0
                released = []
                logger.warning("journal: time correction failed", metadata: ["error": "\(error)"])
            }
        }
        if !released.isEmpty { wakeup.signal() }
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

    /// Held rows a correction released that only the file held: into memory as written records, offered at once.
    /// Returns those it put in memory.
    private func readBack(_ records: [JournalRecord]) -> [JournalRecord] {
        guard !records.isEmpty else { return [] }
        return state.withLock { state in
            let fileOnly = records.filter { !state.memory.contains($0.seq) }
            for record in fileOnly {
                state.memory.insertWritten(seq: record.seq, record.message)
                state.diskOnly[.held, default: 0] -= 1
            }
            return fileOnly
        }
    }

    /// Undoes `readBack` when its transaction did not commit (an entry acknowledged meanwhile is gone already).
    private func forget(_ records: [JournalRecord]) {
        guard !records.isEmpty else { return }
        state.withLock { state in
            for record in records {
                if state.memory.contains(record.seq) { state.memory.remove(record.seq) }
                state.diskOnly[.held, default: 0] += 1
            }
        }
    }
}
