import Logging
import PantauCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Publishes journaled records to the broker over MQTT 5 from a thread of its own, deleting each from the journal
/// only after a successful PUBACK. Fails over between brokers and reconnects with jittered exponential backoff.
public final class Publisher: Sendable {
    struct Control {
        var thread: pthread_t?
        var stopRequested = false
        var drainTimeoutMs = 0
        var abandonRequested = false
        var stats = PublisherStats()
    }

    let config: MQTTConfig
    let topics: TopicScheme
    let queue: any DeliveryQueue
    let clock: any GatewayClock
    let logger: Logger
    let version: String
    let control = Mutex(Control())
    private let progress = Atomic<UInt64>(0)

    /// How long a connection attempt may take up to the CONNACK before it counts as failed.
    static let connectTimeoutMs = 10_000
    /// How long a clean stop waits for the PUBACK of the retained offline status.
    static let offlineStatusTimeoutMs = 1_000
    /// The longest a loop turn waits on the socket, so stop requests and new records are seen quickly.
    static let loopTimeoutMs = 50

    public init(
        config: MQTTConfig, topics: TopicScheme, queue: any DeliveryQueue, clock: any GatewayClock, logger: Logger,
        version: String
    ) {
        self.config = config
        self.topics = topics
        self.queue = queue
        self.clock = clock
        self.logger = logger
        self.version = version
    }

    /// Starts the publishing thread. Calling it again while running does nothing.
    public func start() {
        let alreadyRunning = control.withLock { control -> Bool in
            guard control.thread == nil else { return true }
            control.stopRequested = false
            return false
        }
        guard !alreadyRunning else { return }
        touchProgress()
        let session = Unmanaged.passRetained(PublisherSession(publisher: self)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            let session = Unmanaged<PublisherSession>.fromOpaque(argument!).takeRetainedValue()
            session.run()
            return nil
        }, session)
        guard rc == 0 else {
            Unmanaged<PublisherSession>.fromOpaque(session).release()
            logger.critical("cannot start the MQTT publisher thread", metadata: ["errno": "\(rc)"])
            return
        }
        control.withLock { $0.thread = thread }
    }

    /// Stops publishing: waits up to `drainTimeoutMs` for the PUBACKs of records in flight, publishes the retained
    /// `{"state":"offline","reason":"stopped"}`, disconnects cleanly (no Will) and joins the thread. Records still
    /// unacknowledged go back to the queue. Blocks: call it from a thread, not from the Swift concurrency pool.
    public func stop(drainTimeoutMs: Int) {
        let thread = control.withLock { control -> pthread_t? in
            control.stopRequested = true
            control.drainTimeoutMs = drainTimeoutMs
            defer { control.thread = nil }
            return control.thread
        }
        if let thread { pthread_join(thread, nil) }
    }

    /// A copy of the counters.
    public func snapshot() -> PublisherStats { control.withLock { $0.stats } }

    /// Monotonic time (`GatewayClock.monotonicNanos`) when the publishing loop last ran, for the watchdog.
    public var lastProgressNanos: UInt64 { progress.load(ordering: .relaxed) }

    /// Closes the socket without DISCONNECT, as a dead link would (the broker then publishes the Will).
    func simulateConnectionLoss() {
        control.withLock { $0.abandonRequested = true }
    }

    func touchProgress() {
        progress.store(clock.monotonicNanos(), ordering: .relaxed)
    }

    func updateStats(_ body: (inout PublisherStats) -> Void) {
        control.withLock { body(&$0.stats) }
    }
}
