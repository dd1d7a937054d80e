import Dispatch
import PantauCore

/// Where a leased record came from, so a release rewinds the right cursor.
enum DeliveryLane: CaseIterable {
    case alert, status, live, backlog

    var lane: Lane {
        switch self {
        case .alert: return .alert
        case .status: return .status
        case .live, .backlog: return .data
        }
    }
}

/// Everything the journal keeps in memory, behind one lock.
struct JournalState {
    // Writer side: appended but not committed, acknowledged but not yet deleted.
    var queue: [OutboundMessage] = []
    var acks: [Int64] = []
    var dirtySince: DispatchTime?
    var retryAt: DispatchTime?
    var backoffMillis: Int64 = 0
    var flushWaiters: [FlushWaiter] = []
    var stopping = false
    var stopped = false

    // Delivery side.
    var leased: [Int64: DeliveryLane] = [:]
    /// Acknowledged records still on disk until the next commit deletes them; never offered again.
    var acked: Set<Int64> = []
    /// Records a bound is deleting in the open transaction: not to be leased until it commits.
    var dropping: Set<Int64> = []
    /// Last sequence offered per lane; rows at or below it are skipped unless a lane comes up short.
    var cursors: [DeliveryLane: Int64] = [:]
    /// Weighted round robin between live data and backlog.
    var backlogCredit: Double = 0
    /// Bumped whenever committed deletes leave `acked`, so a lease that read an older snapshot retries.
    var generation: UInt64 = 0

    // Accounting, as committed.
    var pendingByKind: [MessageKind: Int] = Dictionary(uniqueKeysWithValues: MessageKind.allCases.map { ($0, 0) })
    var bytes: Int64 = 0
    var lastSeq: Int64 = 0
    var committedTotal: Int64 = 0
    var ackedTotal: Int64 = 0
    /// Every drop, persisted or not (what stats report).
    var drops: [DropKey: Int64] = [:]
    /// Drops from the in-memory queue, written to the drops table with the next commit.
    var unpersistedDrops: [DropKey: Int64] = [:]
    var lastCommitError: String?
    var diskFull = false
    var transactions: Int64 = 0
    /// The disk reserve file exists (writer thread only).
    var reserveInPlace = false

    var isDirty: Bool { !queue.isEmpty || !acks.isEmpty || !unpersistedDrops.isEmpty }

    /// The committed state of a journal file, read once at open.
    static func load(from db: SQLiteConnection) throws(SQLiteError) -> JournalState {
        var state = JournalState()
        let counts = try db.prepare("SELECT kind, count(*), total(size) FROM records GROUP BY kind")
        while try counts.step() {
            guard let kind = MessageKind(rawValue: Int(counts.int64(0))) else { continue }
            state.pendingByKind[kind] = Int(counts.int64(1))
            state.bytes += counts.int64(2)
        }
        let highestRow = try db.scalar("SELECT max(seq) FROM records") ?? 0
        state.lastSeq = max(try JournalSchema.metaValue(db, "last_seq"), highestRow)
        state.committedTotal = try JournalSchema.metaValue(db, "committed_total")
        state.ackedTotal = try JournalSchema.metaValue(db, "acked_total")
        state.drops = try JournalSchema.drops(db)
        return state
    }

    /// Keeps the in-memory queue within `limit` while commits fail: the oldest telemetry goes first, then
    /// aggregates, then status, alerts last. Sheds to 90 % so a full queue is not rescanned on every append.
    mutating func shedMemory(limit: Int) {
        var excess = queue.count - limit * 9 / 10
        guard excess > 0 else { return }
        var dropped = Set<Int>()
        for kind in [MessageKind.telemetry, .aggregate, .status, .alert] where excess > 0 {
            for (index, message) in queue.enumerated() where excess > 0 && message.kind == kind {
                dropped.insert(index)
                let key = DropKey(device: JournalSchema.deviceKey(message.device), kind: kind)
                drops[key, default: 0] += 1
                unpersistedDrops[key, default: 0] += 1
                excess -= 1
            }
        }
        queue = queue.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    /// Applies what a committed transaction did.
    mutating func apply(_ delta: CommitDelta) {
        for (kind, n) in delta.pending { pendingByKind[kind, default: 0] += n }
        bytes += delta.bytes
        lastSeq = max(lastSeq, delta.lastSeq)
        committedTotal += delta.committed
        ackedTotal += delta.acked
        for (key, n) in delta.drops { drops[key, default: 0] += n }
        transactions += 1
    }
}

/// What one transaction changed, applied to `JournalState` only once it committed.
struct CommitDelta {
    var pending: [MessageKind: Int] = [:]
    var bytes: Int64 = 0
    var lastSeq: Int64 = 0
    var committed: Int64 = 0
    var acked: Int64 = 0
    /// Drops by a bound in this transaction (not the memory drops it persisted: those are counted already).
    var drops: [DropKey: Int64] = [:]

    mutating func removed(kind: MessageKind, size: Int64) {
        pending[kind, default: 0] -= 1
        bytes -= size
    }
}
