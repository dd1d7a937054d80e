import PantauCore

extension Journal {
    /// Up to `limit` records not leased yet: alerts, then status (the file's backlog before memory, by sequence),
    /// then live data and backlog interleaved, the backlog getting `backlogShare` of the slots while both have
    /// records. Live data comes from memory; the backlog is what the file holds alone (read in batches) and anything
    /// in memory acquired before `now - liveWindow`. Backlog and any older alert or status are marked historical.
    /// Reads the file only when it holds records that are not in memory: an idle gateway runs no query.
    public func lease(limit: Int, now: UnixMillis) -> [Delivery] {
        guard limit > 0, !state.withLock({ $0.stopped }) else { return [] }
        let cutoff = now - liveWindow.milliseconds
        var out: [Delivery] = []
        for lane in [Lane.alert, .status] where out.count < limit {
            out += leaseFromFile(lane, limit: limit - out.count, cutoff: cutoff)
            let want = limit - out.count
            out += state.withLock { state in
                state.memory.lease(lane, limit: want).map { delivery($0, state.memory, cutoff: cutoff) }
            }
        }
        if out.count < limit { out += leaseData(limit: limit - out.count, cutoff: cutoff) }
        return out
    }

    /// The broker acknowledged: a message still in memory and never written is done; a written one leaves the
    /// file with the next commit.
    public func acknowledge(_ seqs: [Int64]) {
        guard !seqs.isEmpty else { return }
        let signal = state.withLock { state -> Bool in
            let wasClean = !state.isDirty
            for seq in seqs {
                switch state.memory.acknowledge(seq) {
                case .neverWritten:
                    state.neverWrittenTotal += 1
                case .delete:
                    state.acks.append(seq)
                case .notInMemory:
                    guard let lane = state.leased.removeValue(forKey: seq) else { continue }
                    state.leasedPerLane[lane.lane, default: 0] -= 1
                    state.diskOnly[lane.lane, default: 0] -= 1
                    state.acked.insert(seq)
                    state.acks.append(seq)
                }
            }
            guard wasClean && state.isDirty else { return false }
            state.dirtySince = .now()
            return true
        }
        if signal { wake.signal() }
    }

    /// Not acknowledged (connection lost, refused): offered again, in order, by the next lease.
    public func release(_ seqs: [Int64]) {
        guard !seqs.isEmpty else { return }
        state.withLock { state in
            for seq in state.memory.release(seqs) {
                guard let lane = state.leased.removeValue(forKey: seq) else { continue }
                state.leasedPerLane[lane.lane, default: 0] -= 1
                state.cursors[lane] = min(state.cursors[lane] ?? 0, seq - 1)
            }
            // A lease reading concurrently must not move a cursor back past the released records.
            state.generation &+= 1
        }
        wakeup.signal()
    }

    private func delivery(_ seq: Int64, _ memory: DeliveryMemory, cutoff: UnixMillis) -> Delivery {
        let message = memory.entry(seq)!.message
        return Delivery(record: JournalRecord(seq: seq, message: message), historical: message.acquiredAt < cutoff)
    }

    /// Data: live from memory, backlog from the file and from memory's older entries, at the configured share.
    private func leaseData(limit: Int, cutoff: UnixMillis) -> [Delivery] {
        while true {
            let fromFile = planFromFile(.data, want: limit, cutoff: cutoff)
            let granted = state.withLock { state -> [Delivery]? in
                var live = state.memory.candidates(.data, limit: limit) { $0.message.acquiredAt >= cutoff }[...]
                let old = state.memory.candidates(.data, limit: limit) { $0.message.acquiredAt < cutoff }
                var backlog = merge(fromFile.picks.map(\.record.seq), old)[...]
                let records = Dictionary(uniqueKeysWithValues: fromFile.picks.map { ($0.record.seq, $0.record) })
                var credit = state.backlogCredit
                var picks: [Int64] = []
                for _ in 0..<limit {
                    let takeBacklog: Bool
                    if live.isEmpty || backlog.isEmpty {
                        guard !(live.isEmpty && backlog.isEmpty) else { break }
                        takeBacklog = live.isEmpty
                    } else {
                        credit += config.backlogShare
                        takeBacklog = credit >= 1
                        if takeBacklog { credit -= 1 }
                    }
                    picks.append(takeBacklog ? backlog.removeFirst() : live.removeFirst())
                }
                let filePicks = picks.filter { records[$0] != nil }
                guard grantable(filePicks, state, generation: fromFile.generation) else { return nil }
                state.backlogCredit = credit
                grant(filePicks, lane: .data, in: &state)
                state.memory.markLeased(picks.filter { records[$0] == nil })
                return picks.map { seq in
                    records[seq].map { Delivery(record: $0, historical: $0.message.acquiredAt < cutoff) }
                        ?? delivery(seq, state.memory, cutoff: cutoff)
                }
            }
            if let granted { return granted }
            // A bound is deleting some of these rows, or the writer evicted or committed meanwhile: read again.
            sleepMicros(200)
        }
    }

    /// Up to `limit` rows of an alert or status lane that only the file holds, leased.
    private func leaseFromFile(_ lane: Lane, limit: Int, cutoff: UnixMillis) -> [Delivery] {
        while true {
            let plan = planFromFile(lane, want: limit, cutoff: cutoff)
            if plan.picks.isEmpty { return [] }
            let granted = state.withLock { state -> Bool in
                let seqs = plan.picks.map(\.record.seq)
                guard grantable(seqs, state, generation: plan.generation) else { return false }
                grant(seqs, lane: lane, in: &state)
                return true
            }
            if granted {
                return plan.picks.map { Delivery(record: $0.record, historical: $0.record.message.acquiredAt < cutoff) }
            }
            sleepMicros(200)
        }
    }

    private func grantable(_ seqs: [Int64], _ state: JournalState, generation: UInt64) -> Bool {
        guard !seqs.isEmpty else { return true }
        return state.generation == generation
            && !seqs.contains { seq in
                state.leased[seq] != nil || state.acked.contains(seq) || state.dropping.contains(seq)
                    || state.memory.contains(seq)
            }
    }

    private func grant(_ seqs: [Int64], lane: Lane, in state: inout JournalState) {
        let cursor = DeliveryLane(lane)
        for seq in seqs {
            state.leased[seq] = cursor
            state.cursors[cursor] = max(state.cursors[cursor] ?? 0, seq)
        }
        state.leasedPerLane[lane, default: 0] += seqs.count
    }

    /// Reads up to `want` rows of a lane that are in the file only, not leased, in sequence order (one query,
    /// from the lane's cursor). Nothing is read when the file holds no such row.
    private func planFromFile(_ lane: Lane, want: Int, cutoff: UnixMillis) -> LeasePlan {
        let view = state.withLock { state -> LeaseView? in
            guard state.diskOffers(lane) else { return nil }
            return LeaseView(
                leased: state.leased, acked: state.acked, inMemory: state.memory.entries,
                cursor: state.cursors[DeliveryLane(lane)] ?? 0, generation: state.generation)
        }
        guard let view else { return LeasePlan(generation: 0) }
        let records = readerDB.withLock { db in
            (try? LeasePlanner(db: db, view: view).fetch(lane, want: want)) ?? []
        }
        return LeasePlan(picks: records.map { LeasePick(record: $0) }, generation: view.generation)
    }
}

/// Two ascending lists merged into one.
private func merge(_ a: [Int64], _ b: [Int64]) -> [Int64] {
    var out: [Int64] = []
    out.reserveCapacity(a.count + b.count)
    var i = 0
    var j = 0
    while i < a.count || j < b.count {
        if j == b.count || (i < a.count && a[i] < b[j]) {
            out.append(a[i])
            i += 1
        } else {
            out.append(b[j])
            j += 1
        }
    }
    return out
}

/// What a file lease needs from memory, copied under the lock (copy on write, so O(1)) so the file is read
/// without it.
struct LeaseView {
    var leased: [Int64: DeliveryLane]
    var acked: Set<Int64>
    var inMemory: [Int64: DeliveryMemory.Entry]
    var cursor: Int64
    var generation: UInt64
}

struct LeasePick {
    var record: JournalRecord
}

struct LeasePlan {
    var picks: [LeasePick] = []
    var generation: UInt64
}

/// Reads a lane's rows with one indexed range query from its cursor.
struct LeasePlanner {
    let db: SQLiteConnection
    let view: LeaseView

    /// Up to `want` rows of a lane above its cursor, skipping leased, acknowledged and in-memory ones. A lane that
    /// comes up short is read again from the start: rows evicted or released below the cursor are found there.
    func fetch(_ lane: Lane, want: Int) throws(SQLiteError) -> [JournalRecord] {
        let records = try scan(lane, after: view.cursor, want: want)
        guard records.count < want, view.cursor > 0 else { return records }
        return try scan(lane, after: 0, want: want)
    }

    /// A lane's rows after a cursor (?1 lane, ?2 cursor).
    static let byLaneSQL =
        "SELECT \(JournalSchema.recordColumns) FROM records INDEXED BY records_lane_seq "
        + "WHERE lane = ?1 AND seq > ?2 ORDER BY seq"

    private func scan(_ lane: Lane, after cursor: Int64, want: Int) throws(SQLiteError) -> [JournalRecord] {
        let statement = try db.cached(Self.byLaneSQL)
        try statement.bind(.integer(lane.rawValue), .integer(cursor))
        // Reset before returning: an unfinished statement would hold the read snapshot open.
        defer { statement.reset() }
        var records: [JournalRecord] = []
        while records.count < want, try statement.step() {
            let seq = statement.int64(0)
            if view.leased[seq] != nil || view.acked.contains(seq) || view.inMemory[seq] != nil { continue }
            records.append(JournalSchema.record(statement))
        }
        return records
    }
}
