import Logging
import PantauCore

/// The journal's bounds, enforced inside a group-commit transaction: records older than `maxAge` go, then while
/// the pending bytes exceed `maxBytes` (or a full disk needs room) the oldest telemetry goes first, then
/// aggregates, then status, alerts last (and never to make room on a full disk, only for the configured size).
struct JournalBounds {
    let db: SQLiteConnection
    let logger: Logger

    static let agedSQL =
        "DELETE FROM records INDEXED BY records_lane_acquired WHERE lane = ?1 AND acquired_at < ?2 "
        + "RETURNING device, kind, size"
    static let oldestSQL =
        "SELECT seq, size FROM records INDEXED BY records_lane_seq WHERE lane = ?1 AND kind = ?2 ORDER BY seq"
    static let deleteOldestSQL =
        "DELETE FROM records INDEXED BY records_lane_seq WHERE lane = ?1 AND kind = ?2 AND seq <= ?3 "
        + "RETURNING device, kind, size"

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
            guard freed < kindGoal else { continue }
            freed += try dropOldest(kind, bytes: kindGoal - freed, into: &delta, counts: &dropped)
        }
        log(dropped, reason: sizeExcess > 0 ? "max_bytes" : "disk_full", freed: freed)
    }

    /// Deletes every record acquired before `cutoff`; returns the bytes freed.
    private func dropOlder(than cutoff: UnixMillis, into delta: inout CommitDelta) throws(SQLiteError) -> Int64 {
        let delete = try db.cached(Self.agedSQL)
        var dropped: [DropKey: Int64] = [:]
        var freed: Int64 = 0
        for lane in Lane.allCases {
            delete.reset()
            try delete.bind(.integer(lane.rawValue), .integer(cutoff))
            freed += try collect(delete, into: &delta, counts: &dropped)
        }
        log(dropped, reason: "max_age", freed: freed)
        return freed
    }

    /// Deletes the oldest records of `kind` until at least `bytes` are freed (or none is left); returns the bytes.
    private func dropOldest(
        _ kind: MessageKind, bytes goal: Int64, into delta: inout CommitDelta, counts: inout [DropKey: Int64]
    ) throws(SQLiteError) -> Int64 {
        let lane = Lane(kind).rawValue
        let scan = try db.cached(Self.oldestSQL)
        try scan.bind(.integer(lane), .integer(Int64(kind.rawValue)))
        var total: Int64 = 0
        var lastSeq: Int64?
        while total < goal, try scan.step() {
            lastSeq = scan.int64(0)
            total += scan.int64(1)
        }
        scan.reset()
        guard let lastSeq else { return 0 }
        let delete = try db.cached(Self.deleteOldestSQL)
        try delete.bind(.integer(lane), .integer(Int64(kind.rawValue)), .integer(lastSeq))
        return try collect(delete, into: &delta, counts: &counts)
    }

    /// Steps a `DELETE ... RETURNING device, kind, size`, counting each row as a drop.
    private func collect(
        _ delete: SQLiteStatement, into delta: inout CommitDelta, counts: inout [DropKey: Int64]
    ) throws(SQLiteError) -> Int64 {
        var freed: Int64 = 0
        while try delete.step() {
            let kind = MessageKind(rawValue: Int(delete.int64(1))) ?? .telemetry
            let size = delete.int64(2)
            let key = DropKey(device: JournalSchema.deviceKey(delete.text(0)), kind: kind)
            delta.removed(kind: kind, size: size)
            delta.drops[key, default: 0] += 1
            counts[key, default: 0] += 1
            freed += size
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
