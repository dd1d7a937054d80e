import PantauCore
import PantauJournal
import PantauModbus
import PantauMQTT

/// The gateway's state in one value: published as the health message and answered on the status socket.
public struct GatewayHealth: Encodable, Sendable {
    public struct JournalPart: Encodable, Sendable {
        var path: String
        var pending: Int
        var pending_by_kind: [String: Int]
        var bytes: Int64
        var oldest_pending_ts: Int64?
        var committed_total: Int64
        var acked_total: Int64
        var drops_total: Int64
        var drops: [String: Int64]
        var drops_by_kind: [String: Int64]
        var disk_full: Bool
        var last_error: String?
        var events: [String]
    }

    public struct BrokerPart: Encodable, Sendable {
        var connected: Bool
        var broker: String?
        var connects: Int
        var disconnects: Int
        var in_flight: Int
        var published_total: Int
        var acked_total: Int
        var rejected_total: Int
        var last_error: String?
        var last_publish_ts: Int64?
    }

    public struct DevicePart: Encodable, Sendable {
        var name: String
        var unit: Int
        var state: String
        var last_reading_ts: Int64?
        var last_reading_age_s: Double?
        var polls: Int
        var errors_total: Int
        var consecutive_errors: Int
        var interval_ms: Int64
        var last_error: String?
    }

    public struct BusPart: Encodable, Sendable {
        var name: String
        var connected: Bool
        var transactions: Int
        var timeouts: Int
        var crc_errors: Int
        var other_errors: Int
        var mean_response_ms: Double
        var utilisation: Double
        var cycle_overruns: Int
        var devices: [DevicePart]
    }

    var site: String
    var gateway: String
    var version: String
    var ts: Int64
    var uptime_s: Double
    var journal: JournalPart
    var broker: BrokerPart
    var buses: [BusPart]

    init(
        identity: GatewayIdentity, now: UnixMillis, startedAt: UnixMillis, journal j: JournalStats, events: [String],
        publisher p: PublisherStats, buses: [BusStats]
    ) {
        site = identity.site
        gateway = identity.id
        version = PantauVersion.current
        ts = now
        uptime_s = Double(now - startedAt) / 1000
        journal = JournalPart(
            path: j.path, pending: j.pending,
            pending_by_kind: Dictionary(uniqueKeysWithValues: j.pendingByKind.map { ($0.key.name, $0.value) }),
            bytes: j.bytes, oldest_pending_ts: j.oldestPendingAcquiredAt, committed_total: j.committedTotal,
            acked_total: j.ackedTotal, drops_total: j.dropsTotal, drops: j.dropsByDevice,
            drops_by_kind: Dictionary(uniqueKeysWithValues: j.dropsByKind.map { ($0.key.name, $0.value) }),
            disk_full: j.diskFull, last_error: j.lastCommitError, events: events)
        broker = BrokerPart(
            connected: p.connected, broker: p.broker, connects: p.connects, disconnects: p.disconnects,
            in_flight: p.inFlight, published_total: p.publishedTotal, acked_total: p.ackedTotal,
            rejected_total: p.rejectedTotal, last_error: p.lastError.map { "\($0)" }, last_publish_ts: p.lastPublishAt)
        self.buses = buses.map { b in
            BusPart(
                name: b.bus, connected: b.connected, transactions: b.transactions, timeouts: b.timeouts,
                crc_errors: b.crcErrors, other_errors: b.otherErrors, mean_response_ms: b.meanResponseMs,
                utilisation: b.utilisation, cycle_overruns: b.cycleOverruns,
                devices: b.devices.map { d in
                    DevicePart(
                        name: d.name, unit: d.unitId,
                        state: d.online.map { $0 ? "online" : "offline" } ?? "unknown",
                        last_reading_ts: d.lastReadingAt,
                        last_reading_age_s: d.lastReadingAt.map { Double(now - $0) / 1000 }, polls: d.polls,
                        errors_total: d.errorsTotal, consecutive_errors: d.consecutiveErrors,
                        interval_ms: d.interval.milliseconds, last_error: d.lastError)
                })
        }
    }
}
