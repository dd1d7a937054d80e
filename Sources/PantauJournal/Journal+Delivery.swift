import PantauCore

extension Journal {
    /// Up to `limit` committed records not leased yet: alerts, then status (by sequence), then live data and
    /// backlog interleaved, the backlog getting `backlogShare` of the slots while both have records. Backlog
    /// (acquired before `now - liveWindow`) and any older alert or status are marked historical.
    public func lease(limit: Int, now: UnixMillis) -> [Delivery] {
        guard limit > 0 else { return [] }
        let cutoff = now - liveWindow.milliseconds
        while true {
            let view = state.withLock { state in
                LeaseView(
                    leased: state.leased, acked: state.acked, cursors: state.cursors, generation: state.generation,
                    credit: state.backlogCredit)
            }
            let plan = readerDB.withLock { db in
                (try? LeasePlanner(db: db, view: view, cutoff: cutoff, share: config.backlogShare).plan(limit: limit))
                    ?? LeasePlan()
            }
            let granted = state.withLock { state -> Bool in
                // Acknowledged rows deleted since our read could be in the plan; a concurrent lease could overlap.
                let taken = plan.picks.contains { pick in
                    state.leased[pick.record.seq] != nil || state.acked.contains(pick.record.seq)
                        || state.dropping.contains(pick.record.seq)
                }
                guard state.generation == view.generation, !taken else { return false }
                for pick in plan.picks {
                    state.leased[pick.record.seq] = pick.lane
                    state.cursors[pick.lane] = pick.record.seq
                }
                state.backlogCredit = plan.credit
                return true
            }
            if granted {
                return plan.picks.map { Delivery(record: $0.record, historical: $0.historical) }
            }
            // A bound is deleting some of these records in an open transaction: read again once it has committed.
            sleepMicros(200)
        }
    }

    /// The broker acknowledged: the records leave the journal with the next group commit.
    public func acknowledge(_ seqs: [Int64]) {
        guard !seqs.isEmpty else { return }
        let signal = state.withLock { state -> Bool in
            let wasClean = !state.isDirty
            for seq in seqs {
                state.leased[seq] = nil
                state.acked.insert(seq)
            }
            state.acks.append(contentsOf: seqs)
            if wasClean { state.dirtySince = .now() }
            return wasClean
        }
        if signal { wake.signal() }
    }

    /// Not acknowledged (connection lost, refused): offered again, in order, by the next lease.
    public func release(_ seqs: [Int64]) {
        state.withLock { state in
            for seq in seqs {
                guard let lane = state.leased.removeValue(forKey: seq) else { continue }
                let lanes: [DeliveryLane] = lane.lane == .data ? [.live, .backlog] : [lane]
                for lane in lanes { state.cursors[lane] = min(state.cursors[lane] ?? 0, seq - 1) }
            }
            // A lease reading concurrently must not move a cursor back past the released records.
            state.generation &+= 1
        }
    }
}

/// What a lease needs from memory, copied (copy on write, so O(1)) under the lock so the database is read without it.
struct LeaseView {
    var leased: [Int64: DeliveryLane]
    var acked: Set<Int64>
    var cursors: [DeliveryLane: Int64]
    var generation: UInt64
    var credit: Double
}

struct LeasePick {
    var record: JournalRecord
    var lane: DeliveryLane
    var historical: Bool
}

struct LeasePlan {
    var picks: [LeasePick] = []
    var credit: Double = 0
}

/// Chooses the records of one lease with indexed range queries from each lane's cursor.
struct LeasePlanner {
    let db: SQLiteConnection
    let view: LeaseView
    let cutoff: UnixMillis
    let share: Double

    func plan(limit: Int) throws(SQLiteError) -> LeasePlan {
        var plan = LeasePlan(credit: view.credit)
        for lane in [DeliveryLane.alert, .status] where plan.picks.count < limit {
            for record in try fetch(lane, want: limit - plan.picks.count) {
                plan.picks.append(LeasePick(record: record, lane: lane, historical: record.message.acquiredAt < cutoff))
            }
        }
        let slots = limit - plan.picks.count
        guard slots > 0 else { return plan }
        var live = try fetch(.live, want: slots)[...]
        var backlog = try fetch(.backlog, want: slots)[...]
        for _ in 0..<slots {
            let takeBacklog: Bool
            if live.isEmpty || backlog.isEmpty {
                guard !(live.isEmpty && backlog.isEmpty) else { break }
                takeBacklog = live.isEmpty
            } else {
                plan.credit += share
                takeBacklog = plan.credit >= 1
                if takeBacklog { plan.credit -= 1 }
            }
            if takeBacklog {
                plan.picks.append(LeasePick(record: backlog.removeFirst(), lane: .backlog, historical: true))
            } else {
                plan.picks.append(LeasePick(record: live.removeFirst(), lane: .live, historical: false))
            }
        }
        return plan
    }

    /// Up to `want` records of a lane above its cursor, skipping leased and acknowledged ones. A lane that comes up
    /// short is read again from the start: live rows that aged into the backlog below its cursor are found there,
    /// and the rescan costs only the leased rows it skips.
    private func fetch(_ lane: DeliveryLane, want: Int) throws(SQLiteError) -> [JournalRecord] {
        // Live rows start near the first row acquired inside the live window: begin there, not at the oldest row,
        // so a deep backlog is never walked (or sorted) to find the live data.
        let start = lane == .live ? try liveFloor() : 0
        let cursor = max(view.cursors[lane] ?? 0, start)
        let records = try scan(lane, after: cursor, want: want)
        guard records.count < want, cursor > start else { return records }
        return try scan(lane, after: start, want: want)
    }

    /// Just below the sequence of the earliest-acquired live row (a row acquired slightly earlier but committed
    /// later may lie below it; it is delivered by the backlog lane once it ages, never lost).
    private func liveFloor() throws(SQLiteError) -> Int64 {
        let statement = try db.cached(Self.liveFloorSQL)
        defer { statement.reset() }
        try statement.bind(.integer(Lane.data.rawValue), .integer(cutoff))
        return try statement.step() ? statement.int64(0) - 1 : Int64.max - 1
    }

    /// Alerts or status after a cursor (?1 lane, ?2 cursor).
    static let byLaneSQL =
        "SELECT \(JournalSchema.recordColumns) FROM records INDEXED BY records_lane_seq "
        + "WHERE lane = ?1 AND seq > ?2 ORDER BY seq"
    /// Live data: a range on sequence from the live cursor (at or above the live floor), in delivery order.
    static let liveSQL =
        "SELECT \(JournalSchema.recordColumns) FROM records INDEXED BY records_lane_seq "
        + "WHERE lane = ?1 AND seq > ?2 AND acquired_at >= ?3 ORDER BY seq"
    /// The sequence of the earliest-acquired row inside the live window (?1 lane, ?2 cutoff).
    static let liveFloorSQL =
        "SELECT seq FROM records INDEXED BY records_lane_acquired WHERE lane = ?1 AND acquired_at >= ?2 "
        + "ORDER BY acquired_at LIMIT 1"
    /// Backlog: a range on sequence from the cursor, oldest first.
    static let backlogSQL =
        "SELECT \(JournalSchema.recordColumns) FROM records INDEXED BY records_lane_seq "
        + "WHERE lane = ?1 AND seq > ?2 AND acquired_at < ?3 ORDER BY seq"

    private func scan(_ lane: DeliveryLane, after cursor: Int64, want: Int) throws(SQLiteError) -> [JournalRecord] {
        let statement: SQLiteStatement
        switch lane {
        case .alert, .status:
            statement = try db.cached(Self.byLaneSQL)
            try statement.bind(.integer(lane.lane.rawValue), .integer(cursor))
        case .live:
            statement = try db.cached(Self.liveSQL)
            try statement.bind(.integer(Lane.data.rawValue), .integer(cursor), .integer(cutoff))
        case .backlog:
            statement = try db.cached(Self.backlogSQL)
            try statement.bind(.integer(Lane.data.rawValue), .integer(cursor), .integer(cutoff))
        }
        // Reset before returning: an unfinished statement would hold the read snapshot open.
        defer { statement.reset() }
        var records: [JournalRecord] = []
        while records.count < want, try statement.step() {
            let seq = statement.int64(0)
            if view.leased[seq] != nil || view.acked.contains(seq) { continue }
            records.append(JournalSchema.record(statement))
        }
        return records
    }
}
