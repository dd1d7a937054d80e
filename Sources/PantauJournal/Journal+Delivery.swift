import PantauCore
import PantauPlatform

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
            state.acknowledge(seqs)
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
                guard let allowed = grantable(fromFile.picks.map(\.record.seq), state, generation: fromFile.generation)
                else { return nil }
                var live = state.memory.liveCandidates(limit: limit, cutoff: cutoff)[...]
                let old = state.memory.agedCandidates(limit: limit, cutoff: cutoff)
                var backlog = merge(allowed, old)[...]
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
                state.backlogCredit = credit
                let filePicks = picks.filter { records[$0] != nil }
                // File rows are taken in order: past the last one taken only when every allowed row was taken.
                let scannedTo = filePicks.count == allowed.count ? fromFile.scannedTo : (filePicks.last ?? 0)
                grant(filePicks, lane: .data, scannedTo: scannedTo, in: &state)
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
            let granted = state.withLock { state -> Set<Int64>? in
                guard let allowed = grantable(plan.picks.map(\.record.seq), state, generation: plan.generation)
                else { return nil }
                grant(allowed, lane: lane, scannedTo: plan.scannedTo, in: &state)
                return Set(allowed)
            }
            if let granted {
                return plan.picks.filter { granted.contains($0.record.seq) }.map {
                    Delivery(record: $0.record, historical: $0.record.message.acquiredAt < cutoff)
                }
            }
            sleepMicros(200)
        }
    }

    /// The rows of a file read that may still be leased, or nil when the read is stale (a bound deleted rows, or
    /// rows were evicted, since it began). Rows leased, acknowledged, being dropped or held in memory are left out.
    private func grantable(_ seqs: [Int64], _ state: JournalState, generation: UInt64) -> [Int64]? {
        guard !seqs.isEmpty else { return [] }
        guard state.generation == generation else { return nil }
        return seqs.filter { seq in
            state.leased[seq] == nil && !state.acked.contains(seq) && !state.dropping.contains(seq)
                && !state.memory.contains(seq)
        }
    }

    /// Leases `seqs` from the file; the lane's cursor moves past everything the read saw (what it left out is
    /// leased, acknowledged, in memory or being dropped: a release, an eviction or a rollback rewinds the cursor).
    private func grant(_ seqs: [Int64], lane: Lane, scannedTo: Int64, in state: inout JournalState) {
        let cursor = DeliveryLane(lane)
        for seq in seqs { state.leased[seq] = cursor }
        state.cursors[cursor] = max(state.cursors[cursor] ?? 0, scannedTo)
        state.leasedPerLane[lane, default: 0] += seqs.count
    }

    /// Reads up to `want` rows of a lane after its cursor, in sequence order (one query, no lock held while it
    /// runs). Nothing is read when the file holds no row that is not leased or in memory.
    private func planFromFile(_ lane: Lane, want: Int, cutoff: UnixMillis) -> LeasePlan {
        let view = state.withLock { state -> (cursor: Int64, generation: UInt64)? in
            guard state.diskOffers(lane) else { return nil }
            // Acknowledged rows right after the cursor (a drain's deferred deletes, after a rewind) are skipped.
            let cursor = state.acked.firstOutside(after: state.cursors[DeliveryLane(lane)] ?? 0) - 1
            return (cursor, state.generation)
        }
        guard let view else { return LeasePlan(generation: 0, scannedTo: 0) }
        let records = readerDB.withLock { db in
            (try? LeasePlanner(db: db).scan(lane, after: view.cursor, want: want)) ?? []
        }
        return LeasePlan(
            picks: records.map { LeasePick(record: $0) }, generation: view.generation,
            scannedTo: records.last?.seq ?? view.cursor)
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

struct LeasePick {
    var record: JournalRecord
}

struct LeasePlan {
    var picks: [LeasePick] = []
    var generation: UInt64
    /// The highest sequence the read saw.
    var scannedTo: Int64
}

/// Reads a lane's rows with one indexed range query from its cursor.
struct LeasePlanner {
    let db: SQLiteConnection

    /// A lane's rows after a cursor (?1 lane, ?2 cursor).
    static let byLaneSQL =
        "SELECT \(JournalSchema.recordColumns) FROM records INDEXED BY records_lane_seq "
        + "WHERE lane = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"

    /// Up to `want` rows of a lane after `cursor`, in sequence order.
    func scan(_ lane: Lane, after cursor: Int64, want: Int) throws(SQLiteError) -> [JournalRecord] {
        let statement = try db.cached(Self.byLaneSQL)
        try statement.bind(.integer(lane.rawValue), .integer(cursor), .integer(Int64(want)))
        // Reset before returning: an unfinished statement would hold the read snapshot open.
        defer { statement.reset() }
        var records: [JournalRecord] = []
        while try statement.step() { records.append(JournalSchema.record(statement)) }
        return records
    }
}
