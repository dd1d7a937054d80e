import PantauPlatform

/// A journaled record handed to the publisher, with whether it is replayed backlog (published with `"hist":true`).
public struct Delivery: Sendable, Hashable {
    public var record: JournalRecord
    public var historical: Bool

    public init(record: JournalRecord, historical: Bool) {
        self.record = record
        self.historical = historical
    }
}

/// The publisher's view of the journal: records leased in delivery order, removed only on acknowledgement.
public protocol DeliveryQueue: AnyObject, Sendable {
    /// Up to `limit` records not yet leased, in delivery order: alerts and status first (by sequence), then
    /// aggregates and telemetry, live data interleaved with the backlog (oldest first) at the configured share.
    func lease(limit: Int, now: UnixMillis) -> [Delivery]
    /// The broker acknowledged with a success reason code: the record leaves the journal.
    func acknowledge(_ seqs: [Int64])
    /// Sent but not acknowledged (connection lost, refused): offered again, in order.
    func release(_ seqs: [Int64])
    /// Signalled when records arrive (or come back), so the publisher waits on it instead of a timer.
    var wakeup: WakeSignal { get }
}
