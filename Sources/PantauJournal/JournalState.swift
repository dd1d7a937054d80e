import Dispatch
import PantauCore

/// Where a record leased from the file came from, so a release rewinds the right cursor.
enum DeliveryLane: CaseIterable {
    case alert, status, data, held

    init(_ lane: Lane) {
        switch lane {
        case .alert: self = .alert
        case .status: self = .status
        case .data: self = .data
        case .held: self = .held
        }
    }

    var lane: Lane {
        switch self {
        case .alert: return .alert
        case .status: return .status
        case .data: return .data
        case .held: return .held
        }
    }
}

/// Everything the journal keeps in memory, behind one lock.
struct JournalState {
    /// The hot path: every message not yet acknowledged that is still in memory.
    var memory = DeliveryMemory()

    // Writer side: acknowledged rows to delete, drops to persist.
    var acks: [Int64] = []
    var dirtySince: DispatchTime?
    var retryAt: DispatchTime?
    var backoff = ReconnectBackoff(minSeconds: 0.1, maxSeconds: 10)
    var flushWaiters: [FlushWaiter] = []
    var stopping = false
    var stopped = false

    // Records in the file only (a previous run's backlog, or evicted from memory), per lane.
    var diskOnly: [Lane: Int] = [.alert: 0, .status: 0, .data: 0]
    /// Records leased from the file, not yet acknowledged or released.
    var leased: [Int64: DeliveryLane] = [:]
    var leasedPerLane: [Lane: Int] = [.alert: 0, .status: 0, .data: 0]
    /// Acknowledged rows still in the file (until a commit deletes them, or while deletes are deferred); never
    /// offered again.
    var acked = RangeSet<Int64>()
    /// Acknowledged rows whose acknowledgement is committed (table `acked`) and whose rows are deleted later.
    var deferred = DeferredDeletes()
    /// Rows a bound is deleting in the open transaction: not to be leased until it commits.
    var dropping: Set<Int64> = []
    /// Last sequence read from the file per lane; rows at or below it are skipped unless a lane comes up short.
    var cursors: [DeliveryLane: Int64] = [:]
    /// Weighted round robin between live data and backlog.
    var backlogCredit: Double = 0
    /// Bumped whenever rows leave or enter the file-only set, so a lease that read an older snapshot retries.
    var generation: UInt64 = 0

    // Sequence numbers.
    /// The highest sequence number issued (assigned at acquisition).
    var lastSeq: Int64 = 0
    /// Numbers up to here are reserved durably: issuing beyond it needs a reservation first.
    var reservedSeq: Int64 = 0
    /// Every number up to here is written, acknowledged, or counted as a drop (persisted with each commit).
    var accountedSeq: Int64 = 0
    /// Numbers reserved before a crash and never accounted for, cumulative.
    var lostInCrash: Int64 = 0

    // Accounting, as committed.
    var pendingByKind: [MessageKind: Int] = Dictionary(uniqueKeysWithValues: MessageKind.allCases.map { ($0, 0) })
    var bytes: Int64 = 0
    var committedTotal: Int64 = 0
    var ackedTotal: Int64 = 0
    /// Acknowledged before their group was written: never touched the disk (this process).
    var neverWrittenTotal: Int64 = 0
    /// Every drop, persisted or not (what stats report).
    var drops: [DropKey: Int64] = [:]
    /// Drops from memory, written to the drops table with the next commit.
    var unpersistedDrops: [DropKey: Int64] = [:]
    var lastCommitError: String?
    var diskFull = false
    var transactions: Int64 = 0
    /// The disk reserve file exists (writer thread only).
    var reserveInPlace = false

    /// The broker acknowledged `seqs`: a message in memory and never written is done; any other is committed as
    /// acknowledged with the next commit and its row deleted then (or later, see `fileBacklog`); until its row is
    /// gone it is `acked`: no file read offers it again and no bound drops it.
    /// (A written message acknowledged from memory was once left out of `acked`: a bound in a commit already
    /// under way could delete its row and count a delivered message as dropped, and a file read could send it
    /// twice.)
    mutating func acknowledge(_ seqs: [Int64]) {
        for seq in seqs {
            switch memory.acknowledge(seq) {
            case .neverWritten:
                neverWrittenTotal += 1
            case .delete:
                acked.insert(seq)
                acks.append(seq)
            case .notInMemory:
                guard let lane = leased.removeValue(forKey: seq) else { continue }
                leasedPerLane[lane.lane, default: 0] -= 1
                diskOnly[lane.lane, default: 0] -= 1
                acked.insert(seq)
                acks.append(seq)
            }
        }
    }

    /// A bound claims `seq` for deletion: refused while it is leased (the broker may have it) or acknowledged.
    /// A claimed record is not leased until the transaction ends.
    mutating func claimForDrop(_ seq: Int64) -> Bool {
        guard leased[seq] == nil, !acked.contains(seq), memory.claimForDrop(seq) else { return false }
        dropping.insert(seq)
        return true
    }

    /// Something for the writer: messages to write, acknowledgements to commit, drops to persist, or deferred
    /// deletes that are due.
    var isDirty: Bool {
        memory.unwrittenCount > 0 || !acks.isEmpty || !unpersistedDrops.isEmpty || (deferred.rows > 0 && !fileBacklog)
    }

    /// Rows only the file holds are waiting to be sent (or are in flight): a backlog is draining or waits for the
    /// broker. While it lasts, the rows of acknowledged records are not deleted one by one at each commit (the
    /// deletes would compete with the drain for the CPU); their acknowledgements are committed instead, and the
    /// rows go in one go once it is over.
    /// (Held telemetry waiting for the clock is not a backlog: nothing sends it until a correction releases it.)
    var fileBacklog: Bool { [Lane.alert, .status, .data].contains { diskOnly[$0, default: 0] > 0 } }

    /// The committed state of a journal file, read once at open (sequence bookkeeping: `SequenceReservation`).
    static func load(from db: SQLiteConnection) throws(SQLiteError) -> JournalState {
        var state = JournalState()
        let counts = try db.prepare("SELECT kind, count(*), total(size), lane FROM records GROUP BY kind, lane")
        while try counts.step() {
            guard let kind = MessageKind(rawValue: Int(counts.int64(0))) else { continue }
            state.pendingByKind[kind, default: 0] += Int(counts.int64(1))
            state.diskOnly[Lane(rawValue: counts.int64(3)) ?? Lane(kind), default: 0] += Int(counts.int64(1))
            state.bytes += counts.int64(2)
        }
        // Acknowledged rows a previous run left in the file are not pending: their deletes stay deferred.
        state.deferred.ranges = try JournalSchema.ackedRanges(db)
        state.deferred.tableRows = state.deferred.ranges.ranges.count
        for part in try JournalSchema.rowsIn(db, state.deferred.ranges) {
            state.pendingByKind[part.kind, default: 0] -= part.rows
            state.diskOnly[part.lane, default: 0] -= part.rows
            state.bytes -= part.bytes
            state.deferred.rows += part.rows
            state.deferred.bytes += part.bytes
            if let oldest = part.oldest { state.deferred.oldest = min(state.deferred.oldest ?? oldest, oldest) }
        }
        state.acked = state.deferred.ranges
        state.committedTotal = try JournalSchema.metaValue(db, "committed_total")
        state.ackedTotal = try JournalSchema.metaValue(db, "acked_total")
        state.drops = try JournalSchema.drops(db)
        return state
    }

    /// Rows that a disk lease of `lane` could find.
    func diskOffers(_ lane: Lane) -> Bool { diskOnly[lane, default: 0] > leasedPerLane[lane, default: 0] }

    /// Sends memory-only entries away while commits fail (see `DeliveryMemory.shed`).
    mutating func shedMemory(limit: Int) {
        for (key, n) in memory.shed(limit: limit) {
            drops[key, default: 0] += n
            unpersistedDrops[key, default: 0] += n
        }
    }

    /// Written entries beyond the memory window leave memory; the file keeps them as backlog.
    mutating func evict(keeping window: Int) {
        let evicted = memory.evict(keeping: window)
        guard !evicted.isEmpty else { return }
        for (lane, seqs) in evicted {
            diskOnly[lane, default: 0] += seqs.count
            let cursor = DeliveryLane(lane)
            cursors[cursor] = min(cursors[cursor] ?? 0, (seqs.min() ?? 1) - 1)
        }
        generation &+= 1
    }

    /// Applies what a committed transaction did.
    mutating func apply(_ delta: CommitDelta) {
        for (kind, n) in delta.pending { pendingByKind[kind, default: 0] += n }
        bytes += delta.bytes
        committedTotal += delta.committed
        ackedTotal += delta.acked
        for (key, n) in delta.drops { drops[key, default: 0] += n }
        for (seq, lane) in delta.droppedSeqs {
            if memory.contains(seq) {
                memory.remove(seq)
            } else {
                diskOnly[lane, default: 0] -= 1
            }
        }
        if !delta.droppedSeqs.isEmpty { generation &+= 1 }
        if delta.purged {
            acked.subtract(deferred.ranges)
            acked.subtract(delta.settled)
            deferred = DeferredDeletes()
        } else if !delta.settled.isEmpty {
            deferred.ranges.formUnion(delta.settled)
            deferred.rows += delta.settledRows
            deferred.bytes += delta.settledBytes
            if let oldest = delta.settledOldest { deferred.oldest = min(deferred.oldest ?? oldest, oldest) }
            deferred.tableRows += delta.settled.ranges.count
        }
        accountedSeq = max(accountedSeq, delta.accountedSeq)
        reservedSeq = max(reservedSeq, delta.reservedSeq)
        transactions += 1
    }
}

/// What one transaction changed, applied to `JournalState` only once it committed.
struct CommitDelta {
    var pending: [MessageKind: Int] = [:]
    var bytes: Int64 = 0
    var committed: Int64 = 0
    var acked: Int64 = 0
    /// Drops by a bound in this transaction (not the memory drops it persisted: those are counted already).
    var drops: [DropKey: Int64] = [:]
    var droppedSeqs: [(Int64, Lane)] = []
    var accountedSeq: Int64 = 0
    var reservedSeq: Int64 = 0
    /// The acknowledgements this transaction committed (rows found: `settledRows`, `settledBytes`).
    var settled = RangeSet<Int64>()
    var settledRows = 0
    var settledBytes: Int64 = 0
    var settledOldest: UnixMillis?
    /// The acknowledged rows were deleted: the deferred ones and this transaction's.
    var purged = false

    mutating func removed(kind: MessageKind, size: Int64) {
        pending[kind, default: 0] -= 1
        bytes -= size
    }
}

/// Acknowledged rows left in the file on purpose while a backlog drains (table `acked`).
struct DeferredDeletes: Equatable {
    var ranges = RangeSet<Int64>()
    /// Rows and logical bytes they hold in the file.
    var rows = 0
    var bytes: Int64 = 0
    /// The earliest acquisition time among them.
    var oldest: UnixMillis?
    /// Rows of the `acked` table (a purge is due when it grows long).
    var tableRows = 0
}

extension RangeSet<Int64> {
    mutating func insert(_ seq: Int64) { insert(contentsOf: seq..<(seq + 1)) }

    /// The number right after `seq` that is not in the set (`seq + 1` when that is not in it).
    func firstOutside(after seq: Int64) -> Int64 {
        var next = seq + 1
        // The ranges are sorted and disjoint: one binary search finds the range holding `next`, if any.
        let all = ranges
        var low = all.startIndex
        var high = all.endIndex
        while low < high {
            let mid = all.index(low, offsetBy: all.distance(from: low, to: high) / 2)
            if all[mid].upperBound <= next { low = all.index(after: mid) } else { high = mid }
        }
        if low < all.endIndex, all[low].contains(next) { next = all[low].upperBound }
        return next
    }

    /// The number right before `seq` that is not in the set (`seq - 1` when that is not in it).
    func lastOutside(before seq: Int64) -> Int64 {
        let previous = seq - 1
        guard contains(previous) else { return previous }
        return ranges.last { $0.contains(previous) }!.lowerBound - 1
    }
}
