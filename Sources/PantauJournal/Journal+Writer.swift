import Dispatch
import Logging
import PantauCore

/// A group taken from memory for one commit.
struct CommitWork {
    var messages: [OutboundMessage]
    var acks: [Int64]
    var memoryDrops: [DropKey: Int64]
    var waiters: [FlushWaiter]
    /// Taken at shutdown: one attempt, then the writer exits.
    var final: Bool
}

extension JournalState {
    enum WriterStep {
        case wait(DispatchTime?)
        case commit(CommitWork)
    }

    /// Decides what the writer does next: a group is due when a flush waits, at shutdown, when it is large, or
    /// when its oldest message has waited `interval`; after a failed commit, not before the backoff ends.
    mutating func nextStep(now: DispatchTime, interval: Interval, groupLimit: Int) -> WriterStep {
        if flushWaiters.isEmpty && !stopping {
            guard isDirty else { return .wait(nil) }
            if let retryAt, now < retryAt { return .wait(retryAt) }
            if queue.count < groupLimit {
                let due = (dirtySince ?? now) + .milliseconds(Int(interval.milliseconds))
                if now < due { return .wait(due) }
            }
        }
        let work = CommitWork(
            messages: queue, acks: acks, memoryDrops: unpersistedDrops, waiters: flushWaiters, final: stopping)
        queue = []
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
                $0.nextStep(now: .now(), interval: config.commitInterval, groupLimit: groupLimit)
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
                state.queue.insert(contentsOf: work.messages, at: 0)
                state.acks.insert(contentsOf: work.acks, at: 0)
                for (key, n) in work.memoryDrops { state.unpersistedDrops[key, default: 0] += n }
                if state.queue.count > memoryLimit { state.shedMemory(limit: memoryLimit) }
                state.lastCommitError = error.description
                state.diskFull = state.diskFull || error.isDiskProblem
                state.backoffMillis = min(max(state.backoffMillis * 2, 100), 10_000)
                state.retryAt = .now() + .milliseconds(Int(state.backoffMillis))
                state.dirtySince = state.dirtySince ?? .now()
                return state.queue.count
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
            state.withLock { state in
                state.lastCommitError = nil
                state.diskFull = neededRoom
                state.backoffMillis = 0
                state.retryAt = nil
                if !work.acks.isEmpty {
                    state.acked.subtract(work.acks)
                    state.generation &+= 1
                }
            }
        }
        for waiter in work.waiters { waiter.finish(journalError) }
    }

    /// One transaction: inserts the group, deletes acknowledged rows, enforces the bounds, persists counters.
    /// The in-memory state changes only after COMMIT succeeds.
    private func transaction(
        _ db: SQLiteConnection, work: CommitWork, now: UnixMillis, insert: Bool, deleteAcks: Bool,
        makeRoom: Int64 = 0
    ) throws(SQLiteError) {
        let lastSeq = state.withLock { $0.lastSeq }
        var delta = CommitDelta(lastSeq: lastSeq)
        try db.execute("BEGIN IMMEDIATE")
        do {
            if insert { try insertGroup(db, work.messages, after: lastSeq, into: &delta) }
            if deleteAcks { try deleteAcknowledged(db, work.acks, into: &delta) }
            let bytes = state.withLock { $0.bytes } + delta.bytes
            let bounds = JournalBounds(db: db, logger: logger) { [self] seq in
                self.state.withLock { state in
                    guard state.leased[seq] == nil, !state.acked.contains(seq) else { return false }
                    state.dropping.insert(seq)
                    return true
                }
            }
            try bounds.enforce(
                bytes: bytes, maxBytes: config.maxBytes, makeRoom: makeRoom,
                olderThan: now - config.maxAge.milliseconds, into: &delta)
            let persistedDrops = insert ? work.memoryDrops : [:]
            try persistCounters(db, delta, memoryDrops: persistedDrops)
            try db.execute("COMMIT")
        } catch {
            if db.isInTransaction { try? db.execute("ROLLBACK") }
            state.withLock { $0.dropping.removeAll() }
            throw error
        }
        state.withLock {
            $0.apply(delta)
            $0.dropping.removeAll()
            // A lease that read these rows before the commit must read again: they are gone now.
            if !delta.drops.isEmpty { $0.generation &+= 1 }
        }
    }

    private func insertGroup(
        _ db: SQLiteConnection, _ messages: [OutboundMessage], after lastSeq: Int64, into delta: inout CommitDelta
    ) throws(SQLiteError) {
        let insert = try db.cached(
            "INSERT INTO records (seq, lane, kind, device, topic, body, qos, retain, acquired_at, content_type, size) "
                + "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
        var seq = lastSeq
        for message in messages {
            seq += 1
            let size = JournalSchema.size(of: message)
            insert.reset()
            try insert.bind(
                .integer(seq), .integer(Lane(message.kind).rawValue), .integer(Int64(message.kind.rawValue)),
                .optionalText(message.device), .text(message.topic), .blob(message.body),
                .integer(Int64(message.qos)), .integer(message.retain ? 1 : 0), .integer(message.acquiredAt),
                .text(message.contentType), .integer(size))
            try insert.run()
            delta.pending[message.kind, default: 0] += 1
            delta.bytes += size
        }
        delta.lastSeq = seq
        delta.committed += Int64(messages.count)
    }

    private func deleteAcknowledged(
        _ db: SQLiteConnection, _ seqs: [Int64], into delta: inout CommitDelta
    ) throws(SQLiteError) {
        let delete = try db.cached("DELETE FROM records WHERE seq = ?1 RETURNING kind, size")
        for seq in seqs {
            delete.reset()
            try delete.bind(.integer(seq))
            // A record a bound dropped while it was in flight is already gone: nothing to count.
            while try delete.step() {
                delta.removed(kind: MessageKind(rawValue: Int(delete.int64(0))) ?? .telemetry, size: delete.int64(1))
                delta.acked += 1
            }
        }
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
        let last = try db.cached("UPDATE meta SET value = max(value, ?1) WHERE key = 'last_seq'")
        try last.bind(.integer(delta.lastSeq))
        try last.run()
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
