import Dispatch
import Logging
import PantauCore
import PantauPlatform
import Synchronization

/// The store-and-forward queue between acquisition and publication: memory first, SQLite (WAL) behind it.
///
/// `append` assigns each message its sequence number, keeps it in memory and wakes the publisher at once
/// (`wakeup`). Every `commitInterval` a writer thread of ours commits, in one transaction, only the messages the
/// broker has not acknowledged by then (write-behind); a message acknowledged before its group commits is never
/// written, a written one is deleted once acknowledged. Written messages beyond `memoryWindow` leave memory and are
/// delivered from the file as backlog, in batches. Sequence numbers are reserved ahead in the file
/// (`SequenceReservation`), so a restart never reuses one; numbers lost in a crash window are counted.
///
/// Bounds: `maxBytes` counts the logical size of the written records (see `JournalStats.bytes`), tracked exactly
/// per row rather than from page counts, so drops are deterministic and counted per device. The file itself is
/// larger by its indexes and free pages. A full disk (ENOSPC, `SQLITE_FULL`, `SQLITE_IOERR`) is handled without
/// crashing: a reserve file is released so SQLite can checkpoint and delete, the oldest telemetry is deleted to make
/// room, a group that still does not fit stays in memory (bounded by `memoryLimit`) and is retried with backoff.
///
/// Call `close()` at shutdown: it commits what is not acknowledged and stops the writer thread.
public final class Journal: MessageSink, DeliveryQueue, Sendable {
    /// The journal file.
    public let path: String
    /// Events at open that the gateway should report (a damaged journal moved aside).
    public let startupEvents: [String]
    /// Signalled when there is something new to publish.
    public let wakeup = WakeSignal()

    let config: JournalConfig
    let clock: any GatewayClock
    let logger: Logger
    let liveWindow: Interval
    let memoryLimit: Int
    let memoryWindow: Int
    let reserve: DiskReserve
    let reservation: SequenceReservation
    /// Used by the writer thread (and `close`, and a reservation that cannot wait for the next commit).
    let writerDB: Mutex<SQLiteConnection>
    /// A second connection for backlog leases and stats, so they read while the writer commits (WAL).
    let readerDB: Mutex<SQLiteConnection>
    /// `diskFacts` of the last commit while deletes are deferred.
    private let factsCache = Mutex<(transactions: Int64, facts: DiskFacts)?>(nil)
    let state: Mutex<JournalState>
    let wake = DispatchSemaphore(value: 0)
    private let thread: Mutex<OwnedThread?>

    /// Opens or creates the journal at `config.path` (its folder must exist), checks it, and starts the writer.
    ///
    /// - Parameters:
    ///   - liveWindow: records acquired within this window are live; older ones are backlog, sent as historical.
    ///   - maxPageCount: caps the database size in pages (`PRAGMA max_page_count`), to test a full disk.
    ///   - memoryLimit: most unwritten messages held in memory while commits fail; beyond it the oldest telemetry
    ///     goes, counted as drops.
    ///   - memoryWindow: most messages kept in memory once written; older written ones are read back from the file.
    ///   - diskReserve: bytes set aside in `<path>-reserve` and released when the disk is full, so SQLite can still
    ///     checkpoint and delete (0 disables it). The WAL is checkpointed at half this size.
    ///   - reserveChunk: sequence numbers reserved per write of the reservation.
    public init(
        config: JournalConfig, clock: any GatewayClock, logger: Logger, liveWindow: Interval = .seconds(60),
        maxPageCount: Int? = nil, memoryLimit: Int = 100_000, memoryWindow: Int = 10_000,
        diskReserve: Int = 8 << 20, reserveChunk: Int64 = 4096
    ) throws(JournalError) {
        self.path = config.path
        self.config = config
        self.clock = clock
        self.logger = logger
        self.liveWindow = liveWindow
        self.memoryLimit = max(memoryLimit, 1)
        self.memoryWindow = max(memoryWindow, 1)
        self.reserve = DiskReserve(journalPath: config.path, bytes: diskReserve)
        self.reservation = SequenceReservation(chunk: max(reserveChunk, 1))

        let opened = try JournalOpener.openWriter(
            path: config.path, durability: config.durability, maxPageCount: maxPageCount, clock: clock,
            logger: logger)
        self.startupEvents = opened.events
        var initial: JournalState
        let reader: SQLiteConnection
        do {
            if reserve.isEnabled {
                // A checkpoint must fit in the reserve once it is released: keep the WAL below half of it.
                let pages = max(reserve.bytes / 2 / Int(try opened.connection.scalar("PRAGMA page_size") ?? 4096), 16)
                _ = try opened.connection.texts("PRAGMA wal_autocheckpoint=\(pages)")
                _ = try opened.connection.texts("PRAGMA journal_size_limit=\(reserve.bytes / 2)")
            }
            initial = try JournalState.load(from: opened.connection)
            try reservation.open(opened.connection, into: &initial)
            reader = try SQLiteConnection(path: config.path, readOnly: true)
        } catch {
            throw JournalError(.storage, error, path: config.path)
        }
        JournalFiles.restrictModes(config.path)
        initial.reserveInPlace = reserve.restore()
        if reserve.isEnabled && !initial.reserveInPlace {
            logger.warning("journal: no room for the disk reserve", metadata: ["path": "\(reserve.path)"])
        }
        if initial.lostInCrash > 0 {
            logger.warning(
                "journal: sequence numbers of a crash window unaccounted",
                metadata: ["lost_in_crash": "\(initial.lostInCrash)", "next_seq": "\(initial.lastSeq + 1)"])
        }
        self.writerDB = Mutex(opened.connection)
        self.readerDB = Mutex(reader)
        self.state = Mutex(initial)
        self.thread = Mutex(nil)
        logger.info(
            "journal opened",
            metadata: [
                "path": "\(path)", "pending": "\(initial.pendingByKind.values.reduce(0, +))",
                "last_seq": "\(initial.lastSeq)",
            ])
        let writer = OwnedThread { [self] in runWriter() }
        thread.withLock { $0 = writer }
    }

    /// Assigns sequence numbers and hands the messages to the publisher at once; the writer journals those still
    /// unacknowledged at its next commit. Never waits for the disk, except to reserve numbers when the reserved
    /// range runs out before the writer extended it (one small write per `reserveChunk` numbers).
    public func append(_ messages: [OutboundMessage]) {
        guard !messages.isEmpty else { return }
        while true {
            let outcome = state.withLock { state -> AppendOutcome in
                // After close nothing would ever commit them: say so rather than grow memory.
                guard !state.stopping else { return .closed }
                guard state.lastSeq + Int64(messages.count) <= state.reservedSeq else { return .needsReservation }
                let wasClean = !state.isDirty
                for message in messages {
                    state.lastSeq += 1
                    state.memory.insert(seq: state.lastSeq, message)
                }
                if state.memory.unwrittenCount > memoryLimit { state.shedMemory(limit: memoryLimit) }
                if wasClean { state.dirtySince = .now() }
                return .appended(wakeWriter: wasClean)
            }
            switch outcome {
            case .appended(let wakeWriter):
                wakeup.signal()
                if wakeWriter { wake.signal() }
                return
            case .closed:
                logger.error(
                    "journal: append after close, messages not journaled", metadata: ["count": "\(messages.count)"])
                return
            case .needsReservation:
                reserveNow(atLeast: Int64(messages.count))
            }
        }
    }

    private enum AppendOutcome {
        case appended(wakeWriter: Bool)
        case closed, needsReservation
    }

    /// Commits everything not acknowledged so far and waits for it. Throws when the commit failed (the messages
    /// stay in memory and are retried). Blocks: call it from a thread of ours or at shutdown.
    public func flush() throws(JournalError) {
        let waiter = FlushWaiter()
        let accepted = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.flushWaiters.append(waiter)
            return true
        }
        guard accepted else { throw JournalError(code: .closed, message: "the journal is closed", path: path) }
        wake.signal()
        if let error = waiter.wait() { throw error }
    }

    /// Commits what is not acknowledged (one attempt), stops the writer thread and closes the file. Idempotent;
    /// leases and stats read nothing from disk afterwards.
    public func close() {
        guard let writer = thread.withLock({ $0.take() }) else { return }
        state.withLock { $0.stopping = true }
        wake.signal()
        writer.join()
        // The reader first: the writer, closing last, folds the WAL back into the database file.
        readerDB.withLock { $0.close() }
        writerDB.withLock { $0.close() }
    }

    /// Counters and sizes, for the health message.
    public func stats() -> JournalStats {
        let snapshot = state.withLock { s in
            (
                pending: s.pendingByKind, bytes: s.bytes, committed: s.committedTotal, acked: s.ackedTotal,
                neverWritten: s.neverWrittenTotal, drops: s.drops, error: s.lastCommitError, full: s.diskFull,
                last: s.lastSeq, lost: s.lostInCrash, unwritten: s.memory.unwrittenCount, inMemory: s.memory.count,
                leased: s.leased.count + s.memory.leasedCount, transactions: s.transactions, deferred: s.deferred
            )
        }
        let onDisk = diskFacts(skipping: snapshot.deferred.ranges, transactions: snapshot.transactions)
        var dropsByDevice: [String: Int64] = [:]
        var dropsByKind: [MessageKind: Int64] = [:]
        for (key, count) in snapshot.drops {
            dropsByDevice[key.device, default: 0] += count
            dropsByKind[key.kind, default: 0] += count
        }
        var stats = JournalStats(
            path: path, pendingByKind: snapshot.pending, bytes: snapshot.bytes, fileBytes: onDisk.fileBytes,
            oldestPendingAcquiredAt: onDisk.oldestAcquiredAt, committedTotal: snapshot.committed,
            ackedTotal: snapshot.acked, dropsByDevice: dropsByDevice, dropsByKind: dropsByKind,
            lastCommitError: snapshot.error, diskFull: snapshot.full, pendingSeqRange: onDisk.seqRange,
            lastIssuedSeq: snapshot.last, queued: snapshot.unwritten, leased: snapshot.leased,
            transactions: snapshot.transactions)
        stats.lostInCrash = snapshot.lost
        stats.neverWrittenTotal = snapshot.neverWritten
        stats.inMemory = snapshot.inMemory
        stats.ackedInFile = snapshot.deferred.rows
        return stats
    }

    /// The file's facts; with deferred deletes, read once per commit (skipping acknowledged rows walks an index).
    private func diskFacts(skipping acked: RangeSet<Int64>, transactions: Int64) -> DiskFacts {
        readerDB.withLock { db in
            guard !acked.isEmpty else { return (try? JournalQueries.diskFacts(db)) ?? DiskFacts() }
            if let cached = factsCache.withLock({ $0 }), cached.transactions == transactions { return cached.facts }
            let facts = (try? JournalQueries.diskFacts(db, skipping: acked)) ?? DiskFacts()
            factsCache.withLock { $0 = (transactions, facts) }
            return facts
        }
    }

    /// Reserves more sequence numbers now (an append found the reserved range used up).
    private func reserveNow(atLeast count: Int64) {
        writerDB.withLock { db in
            let (last, reserved, accounted) = state.withLock { ($0.lastSeq, $0.reservedSeq, $0.accountedSeq) }
            guard last + count > reserved else { return }
            let target = last + count + reservation.chunk
            do {
                try reservation.extend(db, to: target)
            } catch {
                // Issuing anyway keeps readings flowing; a crash before the next successful write could reuse
                // these numbers, which the log says.
                logger.error(
                    "journal: cannot reserve sequence numbers, issuing unreserved ones",
                    metadata: ["error": "\(error)", "accounted": "\(accounted)"])
            }
            state.withLock { $0.reservedSeq = max($0.reservedSeq, target) }
        }
    }
}

extension Journal {
    /// The writer connection's value of a pragma, e.g. `synchronous` (tests check the durability setting).
    func writerPragma(_ name: String) -> String? {
        writerDB.withLock { try? $0.texts("PRAGMA \(name)").first }
    }

    /// Changes the page cap; tests raise it to show recovery from a full disk.
    func setMaxPageCount(_ pages: Int) {
        writerDB.withLock { _ = try? $0.texts("PRAGMA max_page_count=\(pages)") }
    }
}

/// One `flush()` caller waiting for the writer's next commit attempt.
final class FlushWaiter: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Mutex<JournalError?>(nil)

    func finish(_ error: JournalError?) {
        outcome.withLock { $0 = error }
        done.signal()
    }

    func wait() -> JournalError? {
        done.wait()
        return outcome.withLock { $0 }
    }
}
