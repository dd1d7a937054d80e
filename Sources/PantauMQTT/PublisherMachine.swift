import PantauCore

/// The publisher's state as a value: connection phase, broker rotation, in-flight window, refusals and backoff.
/// Transitions take the time (monotonic nanoseconds) and return what the driver must do, so every rule is tested
/// without a socket (`PublisherMachineTests`).
struct PublisherMachine {
    enum Phase: Equatable {
        /// No connection; the next attempt is due at this time.
        case waiting(until: UInt64)
        case connecting(deadline: UInt64)
        case connected
    }

    /// A retained message as last sent, republished to every broker we connect to (a new or failed-over broker
    /// has none of our state).
    struct Retained: Equatable, Sendable {
        var topic: String
        var body: [UInt8]
        var qos: Int
        var contentType: String
    }

    enum Action: Equatable {
        /// Start a connection attempt to `brokers[index]`.
        case connect(broker: Int)
        /// Forget the client (a new one per attempt, so libmosquitto resends nothing from RAM).
        case dropClient
        /// Subscribe to these topic filters (the session profile's, on every connect).
        case subscribe([String])
        /// Publish the retained online status, then every retained message sent so far.
        case announce
        /// Lease up to this many records and publish them.
        case fill(room: Int)
        case acknowledge([Int64])
        /// Back to the queue, offered again in order.
        case release([Int64])
    }

    struct InFlight: Equatable {
        var seq: Int64
        var topic: String
    }

    let brokerCount: Int
    let window: Int
    let connectTimeoutNanos: UInt64
    /// Topic filters subscribed on every connect (a new client starts without any).
    var subscriptions: [String] = []
    private(set) var phase: Phase = .waiting(until: 0)
    private(set) var brokerIndex = 0
    private(set) var backoff: ReconnectBackoff
    private(set) var inFlight: [Int32: InFlight] = [:]
    /// Message ids of the status and retained republishes: not journal records, their PUBACK only clears them.
    private(set) var untracked: Set<Int32> = []
    /// Refused records, released back to the queue when due, so a refused topic cannot spin.
    private(set) var refused: [(seq: Int64, due: UInt64)] = []
    /// Per refused record, the same backoff as reconnects (unjittered: the wait is the record's, not a crowd's).
    private var refusals: [Int64: ReconnectBackoff] = [:]

    init(brokerCount: Int, window: Int, backoff: ReconnectBackoff, connectTimeoutNanos: UInt64 = 10_000_000_000) {
        self.brokerCount = max(brokerCount, 1)
        self.window = max(window, 1)
        self.backoff = backoff
        self.connectTimeoutNanos = connectTimeoutNanos
    }

    var isConnected: Bool { phase == .connected }
    var room: Int { isConnected ? max(window - inFlight.count, 0) : 0 }

    /// When the driver must call `tick` at the latest (nil: only events can change anything).
    var nextDeadline: UInt64? {
        var deadline = refused.map(\.due).min()
        switch phase {
        case .waiting(let until): deadline = min(deadline ?? until, until)
        case .connecting(let limit): deadline = min(deadline ?? limit, limit)
        case .connected: break
        }
        return deadline
    }

    /// Time passed: start an attempt when due, give up on one that got no CONNACK, release refusals that are due.
    mutating func tick(now: UInt64, jitter: Double) -> [Action] {
        var actions: [Action] = []
        let due = refused.filter { $0.due <= now }.map(\.seq)
        if !due.isEmpty {
            refused.removeAll { $0.due <= now }
            actions.append(.release(due.sorted()))
        }
        switch phase {
        case .waiting(let until) where now >= until:
            phase = .connecting(deadline: now + connectTimeoutNanos)
            actions.append(.connect(broker: brokerIndex))
        case .connecting(let deadline) where now > deadline:
            actions += attemptFailed(now: now, jitter: jitter)
        default:
            break
        }
        if room > 0 && !due.isEmpty { actions.append(.fill(room: room)) }
        return actions
    }

    /// The attempt could not start or ended before a successful CONNACK: the next broker, after a backoff wait.
    mutating func attemptFailed(now: UInt64, jitter: Double) -> [Action] {
        let actions = connectionGone()
        brokerIndex = (brokerIndex + 1) % brokerCount
        phase = .waiting(until: now + UInt64(backoff.nextDelay(jitter: jitter) * 1e9))
        return actions
    }

    /// CONNACK: success announces us and fills the window; a refusal counts as a failed attempt.
    mutating func connack(reasonCode: Int, now: UInt64, jitter: Double) -> [Action] {
        guard case .connecting = phase else { return [] }
        guard reasonCode == 0 else { return attemptFailed(now: now, jitter: jitter) }
        phase = .connected
        backoff.reset()
        return (subscriptions.isEmpty ? [] : [.subscribe(subscriptions)]) + [.announce, .fill(room: room)]
    }

    /// An established connection ended: the same broker again after a backoff wait; an attempt that ends this
    /// way failed.
    mutating func connectionLost(now: UInt64, jitter: Double) -> [Action] {
        guard isConnected else { return attemptFailed(now: now, jitter: jitter) }
        let actions = connectionGone()
        phase = .waiting(until: now + UInt64(backoff.nextDelay(jitter: jitter) * 1e9))
        return actions
    }

    /// The driver ended the session on purpose (the session profile asked for it): the next broker, at once.
    mutating func sessionEnded(now: UInt64) -> [Action] {
        guard isConnected else { return [] }
        let actions = connectionGone()
        brokerIndex = (brokerIndex + 1) % brokerCount
        phase = .waiting(until: now)
        return actions
    }

    /// New records in the queue.
    func woken() -> [Action] { room > 0 ? [.fill(room: room)] : [] }

    /// The driver handed a record to the library.
    mutating func sent(seq: Int64, mid: Int32, topic: String) {
        inFlight[mid] = InFlight(seq: seq, topic: topic)
    }

    /// The driver published a status or a republished retained message.
    mutating func sentUntracked(mid: Int32) { untracked.insert(mid) }

    /// The library refused a record itself (bad topic, oversize): retried later like a broker refusal.
    mutating func notPublishable(seq: Int64, now: UInt64) { refuse(seq, now: now) }

    /// A PUBACK (or, for QoS 0, the write): success acknowledges, a refusal holds the record back for a growing
    /// delay. Returns the acknowledgement and, with room in the window, a fill.
    mutating func puback(mid: Int32, reasonCode: Int, now: UInt64) -> (actions: [Action], refused: InFlight?) {
        if untracked.remove(mid) != nil { return ([], nil) }
        guard let entry = inFlight.removeValue(forKey: mid) else { return ([], nil) }
        var actions: [Action] = []
        var refusal: InFlight?
        if reasonCode < 0x80 {
            refusals[entry.seq] = nil
            actions.append(.acknowledge([entry.seq]))
        } else {
            refuse(entry.seq, now: now)
            refusal = entry
        }
        if room > 0 { actions.append(.fill(room: room)) }
        return (actions, refusal)
    }

    /// Clean stop: what is in flight or held back goes back to the queue.
    mutating func stopped() -> [Action] {
        let leftover = (inFlight.values.map(\.seq) + refused.map(\.seq)).sorted()
        inFlight.removeAll()
        refused.removeAll()
        untracked.removeAll()
        return leftover.isEmpty ? [.dropClient] : [.dropClient, .release(leftover)]
    }

    private mutating func refuse(_ seq: Int64, now: UInt64) {
        var wait = refusals[seq] ?? ReconnectBackoff(minSeconds: backoff.minSeconds, maxSeconds: backoff.maxSeconds)
        refused.append((seq: seq, due: now + UInt64((wait.nextDelay(jitter: 1) * 1e9).rounded())))
        refusals[seq] = wait
    }

    private mutating func connectionGone() -> [Action] {
        let seqs = inFlight.values.map(\.seq).sorted()
        inFlight.removeAll()
        untracked.removeAll()
        return seqs.isEmpty ? [.dropClient] : [.dropClient, .release(seqs)]
    }
}
