import Logging
import PantauCore

/// The journal's bounds, enforced inside a group-commit transaction: records older than `maxAge` go, then while
/// the pending bytes exceed `maxBytes` (or a full disk needs room) the oldest telemetry goes first, then
/// aggregates, then status, alerts last (and never to make room on a full disk, only for the configured size).
///
/// A dropped record still held in memory leaves memory when the transaction commits (`JournalState.apply`).
///
/// Records leased to the publisher (in flight, waiting for their PUBACK) or already acknowledged are never dropped:
/// the broker may have them, so dropping would count a delivered record as lost, and their PUBACK would free nothing.
struct JournalBounds {
    let db: SQLiteConnection
    let logger: Logger
    /// Claims a record for dropping: false when it is in flight or acknowledged. A claimed record cannot be leased
    /// until the transaction ends, so a lease and a drop never race for the same record.
    let claim: (Int64) -> Bool

    /// A time stamped on an unsynchronised clock (`tq` unsynced, or unverified from another boot) says nothing about
    /// the record's age (1970, or last week's shutdown): the age bound leaves it to the correction (issue 14). So
    /// does held telemetry (`tq` held), which the size bound drops like any telemetry.
    static let agedSQL =
        "SELECT seq FROM records INDEXED BY records_lane_acquired WHERE lane = ?1 AND acquired_at < ?2 "
        + "AND coalesce(tq, '') NOT IN ('unsynced', 'unverified', 'held')"
    static let oldestSQL =
        "SELECT seq, size FROM records INDEXED BY records_lane_seq WHERE lane = ?1 AND kind = ?2 ORDER BY seq"
    static let deleteSQL = "DELETE FROM records WHERE seq = ?1 RETURNING device, kind, size, lane"

    /// Kinds in the order a bound drops them.
    static let dropOrder: [MessageKind] = [.telemetry, .aggregate, .status, .alert]

    func enforce(
        bytes: Int64, maxBytes: Int64, makeRoom: Int64, olderThan cutoff: UnixMillis, into delta: inout CommitDelta
    ) throws(SQLiteError) {
        let aged = try dropOlder(than: cutoff, into: &delta)
        let sizeExcess = bytes - aged - maxBytes
        let goal = max(sizeExcess, makeRoom)
        guard goal > 0 else { return }
        var freed: Int64 = 0
        var dropped: [DropKey: Int64] = [:]
        for kind in Self.dropOrder {
            let kindGoal = kind == .alert ? sizeExcess : goal
            // Held telemetry (issue 14) is the oldest telemetry: it goes first.
            for lane in kind == .telemetry ? [Lane.held, .data] : [Lane(kind)] where freed < kindGoal {
                freed += try dropOldest(kind, in: lane, bytes: kindGoal - freed, into: &delta, counts: &dropped)
            }
        }
        log(dropped, reason: sizeExcess > 0 ? "max_bytes" : "disk_full", freed: freed)
    }

    /// Deletes every record acquired before `cutoff`; returns the bytes freed.
    private func dropOlder(than cutoff: UnixMillis, into delta: inout CommitDelta) throws(SQLiteError) -> Int64 {
        let scan = try db.cached(Self.agedSQL)
        var dropped: [DropKey: Int64] = [:]
        var freed: Int64 = 0
        for lane in Lane.allCases {
            scan.reset()
            try scan.bind(.integer(lane.rawValue), .integer(cutoff))
            var seqs: [Int64] = []
            while try scan.step() {
                let seq = scan.int64(0)
                if claim(seq) { seqs.append(seq) }
            }
            scan.reset()
            freed += try delete(seqs, into: &delta, counts: &dropped)
        }
        log(dropped, reason: "max_age", freed: freed)
        return freed
    }

    /// Deletes the oldest records of `kind` until at least `bytes` are freed (or none is left); returns the bytes.
    private func dropOldest(
        _ kind: MessageKind, in lane: Lane, bytes goal: Int64, into delta: inout CommitDelta,
        counts: inout [DropKey: Int64]
    ) throws(SQLiteError) -> Int64 {
        let scan = try db.cached(Self.oldestSQL)
        try scan.bind(.integer(lane.rawValue), .integer(Int64(kind.rawValue)))
        var total: Int64 = 0
        var seqs: [Int64] = []
        while total < goal, try scan.step() {
            guard claim(scan.int64(0)) else { continue }
            seqs.append(scan.int64(0))
            total += scan.int64(1)
        }
        scan.reset()
        return try delete(seqs, into: &delta, counts: &counts)
    }

    /// Deletes the given records, counting each as a drop; returns the bytes freed.
    private func delete(
        _ seqs: [Int64], into delta: inout CommitDelta, counts: inout [DropKey: Int64]
    ) throws(SQLiteError) -> Int64 {
        let delete = try db.cached(Self.deleteSQL)
        var freed: Int64 = 0
        for seq in seqs {
            delete.reset()
            try delete.bind(.integer(seq))
            guard try delete.step() else { continue }
            let kind = MessageKind(rawValue: Int(delete.int64(1))) ?? .telemetry
            let size = delete.int64(2)
            let key = DropKey(device: JournalSchema.deviceKey(delete.text(0)), kind: kind)
            delta.removed(kind: kind, size: size)
            delta.drops[key, default: 0] += 1
            delta.droppedSeqs.append((seq, Lane(rawValue: delete.int64(3)) ?? Lane(kind)))
            counts[key, default: 0] += 1
            freed += size
            while try delete.step() {}
        }
        return freed
    }

    private func log(_ dropped: [DropKey: Int64], reason: String, freed: Int64) {
        guard !dropped.isEmpty else { return }
        var perKind: [String: Int64] = [:]
        var perDevice: [String: Int64] = [:]
        for (key, n) in dropped {
            perKind[key.kind.name, default: 0] += n
            perDevice[key.device.isEmpty ? "gateway" : key.device, default: 0] += n
        }
        logger.warning(
            "journal bound reached, oldest records dropped",
            metadata: [
                "reason": "\(reason)", "dropped": "\(dropped.values.reduce(0, +))", "bytes": "\(freed)",
                "per_kind": "\(perKind.sorted { $0.key < $1.key })",
                "per_device": "\(perDevice.sorted { $0.key < $1.key })",
            ])
    }
}
