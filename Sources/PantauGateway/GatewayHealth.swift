import PantauCore
import PantauJournal
import PantauMQTT
import PantauModbus

/// The gateway's state in one value: published as the health message and answered on the status socket.
public struct GatewayHealth: Codable, Sendable {
    public struct JournalPart: Codable, Sendable {
        public var path: String
        public var pending: Int
        public var pending_by_kind: [String: Int]
        public var bytes: Int64
        public var oldest_pending_ts: Int64?
        public var committed_total: Int64
        public var acked_total: Int64
        public var drops_total: Int64
        public var drops: [String: Int64]
        public var drops_by_kind: [String: Int64]
        public var disk_full: Bool
        public var last_error: String?
        public var events: [String]
        /// Sequence numbers reserved before crashes and never accounted for (cumulative): at most this many numbers
        /// can be missing at a subscriber because of crashes.
        public var lost_in_crash: Int64
        /// Messages acknowledged by the broker before their group was written: they never touched the disk.
        public var never_written_total: Int64
        /// Messages held in memory (unacknowledged, written or not).
        public var in_memory: Int
        /// Acknowledged records whose rows stay in the file until the backlog has drained.
        public var acked_in_file: Int
    }

    public struct BrokerPart: Codable, Sendable {
        public var connected: Bool
        public var broker: String?
        public var connects: Int
        public var disconnects: Int
        public var in_flight: Int
        public var published_total: Int
        public var acked_total: Int
        public var rejected_total: Int
        public var last_error: String?
        public var last_publish_ts: Int64?
    }

    public struct DevicePart: Codable, Sendable {
        public var name: String
        public var unit: Int
        public var state: String
        public var last_reading_ts: Int64?
        public var last_reading_age_s: Double?
        public var polls: Int
        public var errors_total: Int
        public var consecutive_errors: Int
        public var interval_ms: Int64
        public var last_error: String?
    }

    public struct BusPart: Codable, Sendable {
        public var name: String
        public var connected: Bool
        public var transactions: Int
        public var timeouts: Int
        public var crc_errors: Int
        public var other_errors: Int
        public var mean_response_ms: Double
        public var utilisation: Double
        public var cycle_overruns: Int
        public var devices: [DevicePart]
    }

    /// The wall clock's state (issue 14); absent in the health of older versions.
    public struct ClockPart: Codable, Sendable {
        public var synced: Bool
        public var max_error_ms: Int64?
        public var steps_seen: Int
        /// Telemetry polls this process held back (journaled) until the clock synchronises (`time.unsynced: hold`).
        public var held: Int
        /// Always 0: held telemetry is journaled, bounded by the journal's `max_bytes` and counted in its drops.
        public var held_overflowed: Int
        /// Held polls published with corrected times after synchronisation.
        public var released: Int
        public var policy: String
        public var boot_id: String
    }

    public var site: String
    public var gateway: String
    public var version: String
    public var ts: Int64
    public var uptime_s: Double
    public var journal: JournalPart
    public var broker: BrokerPart
    public var buses: [BusPart]
    public var clock: ClockPart?

    /// Assembles the state from each part's snapshot.
    public init(
        identity: GatewayIdentity, now: UnixMillis, startedAt: UnixMillis, journal j: JournalStats, events: [String],
        publisher p: PublisherStats, buses: [BusStats], clock c: ReadingPipeline.ClockStatus? = nil
    ) {
        clock = c.map {
            ClockPart(
                synced: $0.synced, max_error_ms: $0.maxErrorMs, steps_seen: $0.stepsSeen, held: $0.held,
                held_overflowed: $0.heldOverflowed, released: $0.released, policy: $0.policy.rawValue,
                boot_id: $0.bootId)
        }
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
            disk_full: j.diskFull, last_error: j.lastCommitError, events: events, lost_in_crash: j.lostInCrash,
            never_written_total: j.neverWrittenTotal, in_memory: j.inMemory, acked_in_file: j.ackedInFile)
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
                        interval_ms: d.interval.milliseconds, last_error: d.lastError?.description)
                })
        }
    }
}
