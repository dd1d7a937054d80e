import Dispatch
import Logging
import PantauCore

/// A group taken from memory for one commit.
struct CommitWork {
    /// Messages not acknowledged when the group was taken, with their sequence numbers.
    var records: [JournalRecord]
    var acks: [Int64]
    var memoryDrops: [DropKey: Int64]
    var waiters: [FlushWaiter]
    /// Taken at shutdown: one attempt, then the writer exits.
    var final: Bool
    /// Every number up to here is in this group, written before, acknowledged, or a counted drop.
    var accounted: Int64
    /// `reserved_seq` after this commit: extended ahead while running, shrunk to the last issued at shutdown.
    var reserved: Int64
    /// No backlog only the file holds was left when the group was taken: acknowledged rows are deleted now
    /// (otherwise their acknowledgements are committed and the deletes deferred, see `JournalState.fileBacklog`).
    var purge = true

    var messages: [OutboundMessage] { records.map(\.message) }
}

extension JournalState {
    enum WriterStep {
        case wait(DispatchTime?)
        case commit(CommitWork)
    }

    /// Decides what the writer does next: a group is due when a flush waits, at shutdown, or when its oldest
    /// message has waited `interval`; after a failed commit, not before the backoff ends. The group holds only
    /// what is not acknowledged at this moment.
    mutating func nextStep(now: DispatchTime, interval: Interval, reserveChunk: Int64) -> WriterStep {
        if flushWaiters.isEmpty && !stopping {
            guard isDirty else { return .wait(nil) }
            if let retryAt, now < retryAt { return .wait(retryAt) }
            let due = (dirtySince ?? now) + .milliseconds(Int(interval.milliseconds))
            if now < due { return .wait(due) }
        }
        // Reserve ahead while half a chunk is left, so appends rarely wait for a reservation of their own.
        var reserved = reservedSeq
        if stopping {
            reserved = lastSeq
        } else if lastSeq + reserveChunk / 2 > reservedSeq {
            reserved = lastSeq + reserveChunk
        }
        let work = CommitWork(
            records: memory.takeUnwritten(), acks: acks, memoryDrops: unpersistedDrops, waiters: flushWaiters,
            final: stopping, accounted: lastSeq, reserved: reserved, purge: !fileBacklog)
        acks = []
        unpersistedDrops = [:]
        flushWaiters = []
        dirtySince = nil
        return .commit(work)
    }
}

extension Journal {
    func runWriter() {
        while true {
            let step = state.withLock {
                $0.nextStep(now: .now(), interval: config.commitInterval, reserveChunk: reservation.chunk)
            }
            switch step {
            case .wait(let deadline):
                if let deadline { _ = wake.wait(timeout: deadline) } else { wake.wait() }
            case .commit(let work):
                commit(work)
                // At shutdown one attempt is all: a full disk must not keep the process from exiting.
                guard work.final else { continue }
                let late = state.withLock { state -> [FlushWaiter] in
                    state.stopped = true
                    defer { state.flushWaiters = [] }
                    return state.flushWaiters
                }
                let closed = JournalError(code: .closed, message: "the journal is closed", path: path)
                for waiter in late { waiter.finish(closed) }
                return
            }
        }
    }

    /// Commits a group in one transaction; on a full disk frees what it may and tries once more; on failure keeps
    /// the group in memory for a retry with backoff.
    private func commit(_ work: CommitWork) {
        let now = clock.now()
        var error: SQLiteError?
        var neededRoom = false
        writerDB.withLock { db in
            do throws(SQLiteError) {
                try transaction(db, work: work, now: now, insert: true, deleteAcks: true)
                return
            } catch let first {
                error = first
                guard first.isDiskProblem else { return }
            }
            neededRoom = true
            releaseReserve(db)
            // Acknowledged rows and the oldest droppable rows free pages; then the group may fit. A page is only
            // reused once all its rows are gone, hence the floor of a few pages.
            let roomNeeded = max(2 * work.messages.reduce(Int64(0)) { $0 + JournalSchema.size(of: $1) }, 16_384)
            do throws(SQLiteError) {
                try transaction(db, work: work, now: now, insert: false, deleteAcks: true, makeRoom: roomNeeded)
                try transaction(db, work: work, now: now, insert: true, deleteAcks: false)
                error = nil
            } catch let second {
                error = second
            }
        }
        finishCommit(work, error: error, neededRoom: neededRoom)
    }

    /// Hands the reserve back to the file system and folds the WAL into the database while there is room.
    private func releaseReserve(_ db: SQLiteConnection) {
        let released = state.withLock { state -> Bool in
            defer { state.reserveInPlace = false }
            return state.reserveInPlace
        }
        if released && reserve.release() {
            logger.warning("journal: disk full, reserve released", metadata: ["bytes": "\(reserve.bytes)"])
        }
        _ = try? db.texts("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Puts the reserve back once the disk has room for it and as much again.
    private func restoreReserveIfRoom() {
        guard reserve.isEnabled, !state.withLock({ $0.reserveInPlace }), reserve.canRestore() else { return }
        let restored = reserve.restore()
        state.withLock { $0.reserveInPlace = restored }
        if restored { logger.info("journal: disk reserve restored", metadata: ["bytes": "\(reserve.bytes)"]) }
    }

    private func finishCommit(_ work: CommitWork, error: SQLiteError?, neededRoom: Bool) {
        let journalError = error.map { JournalError(.commitFailed, $0, path: path) }
        if let error {
            let retained = state.withLock { state -> Int in
                state.memory.unwritten(work.records.map(\.seq))
                state.acks.insert(contentsOf: work.acks, at: 0)
                for (key, n) in work.memoryDrops { state.unpersistedDrops[key, default: 0] += n }
                if state.memory.unwrittenCount > memoryLimit { state.shedMemory(limit: memoryLimit) }
                state.lastCommitError = error.description
                state.diskFull = state.diskFull || error.isDiskProblem
                var random = SystemRandomNumberGenerator()
                state.retryAt = .now() + .milliseconds(Int(state.backoff.nextDelay(using: &random) * 1000))
                state.dirtySince = state.dirtySince ?? .now()
                return state.memory.unwrittenCount
            }
            if work.final {
                logger.error(
                    "journal: messages lost at shutdown, the commit failed",
                    metadata: ["count": "\(work.messages.count)", "error": "\(error)"])
            } else {
                logger.warning(
                    "journal commit failed, group kept in memory",
                    metadata: ["error": "\(error)", "queued": "\(retained)"])
            }
        } else {
            if !neededRoom { restoreReserveIfRoom() }
            let signal = state.withLock { state -> Bool in
                state.lastCommitError = nil
                state.diskFull = neededRoom
                state.backoff.reset()
                state.retryAt = nil
                state.memory.written(work.records.map(\.seq))
                if !work.acks.isEmpty { state.generation &+= 1 }
                state.evict(keeping: memoryWindow)
                return state.diskOffers(.data) || state.diskOffers(.alert) || state.diskOffers(.status)
            }
            // Evicted messages are backlog now: the publisher may find room for them.
            if signal { wakeup.signal() }
        }
        for waiter in work.waiters { waiter.finish(journalError) }
    }

    /// One transaction: inserts the group, deletes acknowledged rows, enforces the bounds, persists counters.
    /// The in-memory state changes only after COMMIT succeeds.
    private func transaction(
        _ db: SQLiteConnection, work: CommitWork, now: UnixMillis, insert: Bool, deleteAcks: Bool,
        makeRoom: Int64 = 0
    ) throws(SQLiteError) {
        var delta = CommitDelta(accountedSeq: work.accounted, reservedSeq: work.reserved)
        try db.execute("BEGIN IMMEDIATE")
        do {
            let (committedBytes, deferred) = state.withLock { ($0.bytes, $0.deferred) }
            if deleteAcks {
                // Room wanted, or the file would pass its bound with the deferred rows, or their list grew long, or
                // one of them passed the age bound (the bound's walk would meet it at every commit): they go now too.
                let group = insert ? work.records.reduce(Int64(0)) { $0 + JournalSchema.size(of: $1.message) } : 0
                let purge =
                    work.purge || makeRoom > 0 || committedBytes + deferred.bytes + group > config.maxBytes
                    || deferred.tableRows >= Self.deferredRangesLimit
                    || deferred.oldest.map { $0 < now - config.maxAge.milliseconds } == true
                try settleAcknowledged(db, work.acks, deferred: deferred, purge: purge, into: &delta)
            }
            if insert { try insertGroup(db, work.records, into: &delta) }
            let bytes = committedBytes + delta.bytes
            let bounds = JournalBounds(db: db, logger: logger) { [self] seq in
                self.state.withLock { $0.claimForDrop(seq) }
            }
            try bounds.enforce(
                bytes: bytes, maxBytes: config.maxBytes, makeRoom: makeRoom,
                olderThan: now - config.maxAge.milliseconds, into: &delta)
            let persistedDrops = insert ? work.memoryDrops : [:]
            try persistCounters(db, delta, memoryDrops: persistedDrops)
            if insert { try reservation.record(db, accounted: work.accounted, reserved: work.reserved) }
            try db.execute("COMMIT")
        } catch {
            if db.isInTransaction { try? db.execute("ROLLBACK") }
            state.withLock { state in
                // Rows claimed for a drop that did not happen are offered again: memory entries released, and the
                // file cursors rewound below the lowest claimed row.
                _ = state.memory.release(Array(state.dropping))
                if let lowest = state.dropping.min() {
                    for lane in DeliveryLane.allCases {
                        state.cursors[lane] = min(state.cursors[lane] ?? 0, lowest - 1)
                    }
                }
                state.dropping.removeAll()
            }
            throw error
        }
        state.withLock { state in
            state.apply(delta)
            // A claimed entry whose row was not there to delete is offered again rather than stranded.
            let dropped = Set(delta.droppedSeqs.map(\.0))
            _ = state.memory.release(state.dropping.filter { !dropped.contains($0) })
            state.dropping.removeAll()
        }
    }

    private func insertGroup(
        _ db: SQLiteConnection, _ records: [JournalRecord], into delta: inout CommitDelta
    ) throws(SQLiteError) {
        let insert = try db.cached(
            "INSERT INTO records (seq, lane, kind, device, topic, body, qos, retain, acquired_at, content_type, size, "
                + "boot_id, boottime, tq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)")
        for record in records {
            let message = record.message
            let size = JournalSchema.size(of: message)
            insert.reset()
            try insert.bind(
                .integer(record.seq), .integer(Lane(message).rawValue), .integer(Int64(message.kind.rawValue)),
                .optionalText(message.device), .text(message.topic), .blob(message.body),
                .integer(Int64(message.qos)), .integer(message.retain ? 1 : 0), .integer(message.acquiredAt),
                .text(message.contentType), .integer(size), .optionalText(message.stamp?.bootId),
                message.stamp.map { .integer($0.boottimeMs) } ?? .null, .optionalText(message.stamp?.quality?.rawValue))
            try insert.run()
            delta.pending[message.kind, default: 0] += 1
            delta.bytes += size
        }
        delta.committed += Int64(records.count)
    }

    /// A purge is due once the `acked` table holds this many ranges (a long drain acknowledges in many runs).
    static let deferredRangesLimit = 1024

    /// Commits acknowledgements: counts the rows they free (the pending counters drop now), then deletes those rows
    /// and the deferred ones (`purge`), or records them in the `acked` table for a later purge.
    private func settleAcknowledged(
        _ db: SQLiteConnection, _ seqs: [Int64], deferred: DeferredDeletes, purge: Bool, into delta: inout CommitDelta
    ) throws(SQLiteError) {
        let runs = consecutiveRuns(seqs)
        // One range query per run of consecutive numbers: a drained backlog is acknowledged in long runs.
        let count = try db.cached("SELECT kind, size, acquired_at FROM records WHERE seq BETWEEN ?1 AND ?2")
        for run in runs {
            count.reset()
            try count.bind(.integer(run.lowerBound), .integer(run.upperBound))
            // A record whose row never committed (its group failed) has no row: nothing to count.
            while try count.step() {
                let size = count.int64(1)
                delta.removed(kind: MessageKind(rawValue: Int(count.int64(0))) ?? .telemetry, size: size)
                delta.acked += 1
                delta.settledRows += 1
                delta.settledBytes += size
                delta.settledOldest = min(delta.settledOldest ?? count.int64(2), count.int64(2))
            }
            delta.settled.insert(contentsOf: run.lowerBound..<(run.upperBound + 1))
        }
        count.reset()
        if purge {
            guard !deferred.ranges.isEmpty || !runs.isEmpty else { return }
            var all = deferred.ranges
            all.formUnion(delta.settled)
            if try holdsOnly(db, all) {
                // Every row is acknowledged: SQLite clears the table without visiting row by row.
                try db.execute("DELETE FROM records")
            } else {
                let delete = try db.cached("DELETE FROM records WHERE seq >= ?1 AND seq < ?2")
                for range in all.ranges {
                    delete.reset()
                    try delete.bind(.integer(range.lowerBound), .integer(range.upperBound))
                    try delete.run()
                }
            }
            if !deferred.ranges.isEmpty { try db.execute("DELETE FROM acked") }
            delta.purged = true
        } else {
            let insert = try db.cached(
                "INSERT INTO acked (lo, hi) VALUES (?1, ?2) ON CONFLICT (lo) DO UPDATE SET hi = max(hi, excluded.hi)")
            for run in runs {
                insert.reset()
                try insert.bind(.integer(run.lowerBound), .integer(run.upperBound))
                try insert.run()
            }
        }
    }

    /// The file holds no row outside `ranges` (one indexed lookup per gap).
    private func holdsOnly(_ db: SQLiteConnection, _ ranges: RangeSet<Int64>) throws(SQLiteError) -> Bool {
        let probe = try db.cached("SELECT EXISTS (SELECT 1 FROM records WHERE seq >= ?1 AND seq < ?2)")
        defer { probe.reset() }
        var from = Int64.min
        for range in ranges.ranges + [Int64.max..<Int64.max] {
            probe.reset()
            try probe.bind(.integer(from), .integer(range.lowerBound))
            if try probe.step(), probe.int64(0) != 0 { return false }
            from = range.upperBound
        }
        // The last gap ends below Int64.max: a row numbered Int64.max cannot exist (numbers are reserved ahead).
        return true
    }

    private func persistCounters(
        _ db: SQLiteConnection, _ delta: CommitDelta, memoryDrops: [DropKey: Int64]
    ) throws(SQLiteError) {
        let meta = try db.cached("UPDATE meta SET value = value + ?2 WHERE key = ?1")
        for (key, value) in [("committed_total", delta.committed), ("acked_total", delta.acked)] where value != 0 {
            meta.reset()
            try meta.bind(.text(key), .integer(value))
            try meta.run()
        }
        var drops = delta.drops
        for (key, n) in memoryDrops { drops[key, default: 0] += n }
        let upsert = try db.cached(
            "INSERT INTO drops (device, kind, count) VALUES (?1, ?2, ?3) "
                + "ON CONFLICT (device, kind) DO UPDATE SET count = count + excluded.count")
        for (key, n) in drops {
            upsert.reset()
            try upsert.bind(.text(key.device), .integer(Int64(key.kind.rawValue)), .integer(n))
            try upsert.run()
        }
    }
}

/// The numbers as ranges of consecutive values, ascending; duplicates count once.
func consecutiveRuns(_ seqs: [Int64]) -> [ClosedRange<Int64>] {
    var runs: [ClosedRange<Int64>] = []
    for seq in seqs.sorted() {
        if let last = runs.last, seq <= last.upperBound + 1 {
            if seq > last.upperBound { runs[runs.count - 1] = last.lowerBound...seq }
        } else {
            runs.append(seq...seq)
        }
    }
    return runs
}
