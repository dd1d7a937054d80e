import Dispatch
import Logging
import PantauCore
import Synchronization

/// The durable store-and-forward journal between acquisition and publication (SQLite, WAL, group commit).
///
/// Appends are queued in memory and committed by a writer thread of ours every `commitInterval` (or at once when
/// a group reaches `groupLimit`), in one transaction. The publisher leases committed records in delivery order and
/// acknowledges them on a successful PUBACK; anything not acknowledged is offered again after a restart.
///
/// Bounds: `maxBytes` counts the logical size of the pending records (see `JournalStats.bytes`), tracked exactly
/// per row rather than from page counts, so drops are deterministic and counted per device. The file itself is
/// larger by its indexes and free pages. A full disk (ENOSPC, `SQLITE_FULL`, `SQLITE_IOERR`) is handled without
/// crashing: a reserve file is released so SQLite can checkpoint and delete, the oldest telemetry is deleted to make
/// room, a group that still does not fit stays in memory (bounded) and is retried with backoff.
///
/// Call `close()` at shutdown: it commits what is queued and stops the writer thread.
public final class Journal: MessageSink, DeliveryQueue, Sendable {
    /// The journal file.
    public let path: String
    /// Events at open that the gateway should report (a damaged journal moved aside).
    public let startupEvents: [String]

    let config: JournalConfig
    let clock: any GatewayClock
    let logger: Logger
    let liveWindow: Interval
    let memoryLimit: Int
    let groupLimit: Int
    let reserve: DiskReserve
    /// Used by the writer thread (and `close`); the lock is uncontended except for test hooks.
    let writerDB: Mutex<SQLiteConnection>
    /// A second connection for leases and stats, so they read while the writer commits (WAL).
    let readerDB: Mutex<SQLiteConnection>
    let state: Mutex<JournalState>
    let wake = DispatchSemaphore(value: 0)
    private let thread: Mutex<OwnedThread?>

    /// Opens or creates the journal at `config.path` (its folder must exist), checks it, and starts the writer.
    ///
    /// - Parameters:
    ///   - liveWindow: records acquired within this window are live; older ones are backlog, sent as historical.
    ///   - maxPageCount: caps the database size in pages (`PRAGMA max_page_count`), to test a full disk.
    ///   - memoryLimit: most messages held in memory while commits fail; beyond it the oldest telemetry goes.
    ///   - groupLimit: a group this large is committed without waiting for `commitInterval`.
    ///   - diskReserve: bytes set aside in `<path>-reserve` and released when the disk is full, so SQLite can still
    ///     checkpoint and delete (0 disables it). The WAL is checkpointed at half this size.
    public init(
        config: JournalConfig, clock: any GatewayClock, logger: Logger, liveWindow: Interval = .seconds(60),
        maxPageCount: Int? = nil, memoryLimit: Int = 100_000, groupLimit: Int = 1000, diskReserve: Int = 8 << 20
    ) throws(JournalError) {
        self.path = config.path
        self.config = config
        self.clock = clock
        self.logger = logger
        self.liveWindow = liveWindow
        self.memoryLimit = max(memoryLimit, 1)
        self.groupLimit = max(groupLimit, 1)
        self.reserve = DiskReserve(journalPath: config.path, bytes: diskReserve)

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
            reader = try SQLiteConnection(path: config.path, readOnly: true)
        } catch {
            throw JournalError(.storage, error, path: config.path)
        }
        initial.reserveInPlace = reserve.restore()
        if reserve.isEnabled && !initial.reserveInPlace {
            logger.warning("journal: no room for the disk reserve", metadata: ["path": "\(reserve.path)"])
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

    /// Queues messages for the next group commit; never waits for the disk.
    public func append(_ messages: [OutboundMessage]) {
        guard !messages.isEmpty else { return }
        let signal = state.withLock { state -> Bool? in
            // After close nothing would ever commit them: say so rather than grow the queue.
            guard !state.stopping else { return nil }
            let wasClean = !state.isDirty
            state.queue.append(contentsOf: messages)
            if state.queue.count > memoryLimit { state.shedMemory(limit: memoryLimit) }
            if wasClean { state.dirtySince = .now() }
            return wasClean || state.queue.count >= groupLimit
        }
        guard let signal else {
            logger.error(
                "journal: append after close, messages not journaled", metadata: ["count": "\(messages.count)"])
            return
        }
        if signal { wake.signal() }
    }

    /// Commits everything appended so far and waits for it. Throws when the commit failed (the messages stay
    /// queued in memory and are retried). Blocks: call it from a thread of ours or at shutdown.
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

    /// Commits what is queued (one attempt), stops the writer thread and closes the file. Idempotent; leases and
    /// stats read nothing from disk afterwards.
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
        let snapshot = state.withLock { $0 }
        let onDisk = readerDB.withLock { db in (try? JournalQueries.diskFacts(db)) ?? DiskFacts() }
        var dropsByDevice: [String: Int64] = [:]
        var dropsByKind: [MessageKind: Int64] = [:]
        for (key, count) in snapshot.drops {
            dropsByDevice[key.device, default: 0] += count
            dropsByKind[key.kind, default: 0] += count
        }
        return JournalStats(
            path: path, pendingByKind: snapshot.pendingByKind, bytes: snapshot.bytes, fileBytes: onDisk.fileBytes,
            oldestPendingAcquiredAt: onDisk.oldestAcquiredAt, committedTotal: snapshot.committedTotal,
            ackedTotal: snapshot.ackedTotal, dropsByDevice: dropsByDevice, dropsByKind: dropsByKind,
            lastCommitError: snapshot.lastCommitError, diskFull: snapshot.diskFull,
            pendingSeqRange: onDisk.seqRange, lastIssuedSeq: snapshot.lastSeq, queued: snapshot.queue.count,
            leased: snapshot.leased.count, transactions: snapshot.transactions)
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
