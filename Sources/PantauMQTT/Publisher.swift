import Logging
import PantauCore
import PantauPlatform
import Synchronization

/// Publishes queued records to the broker over MQTT 5 from a thread of its own, acknowledging each to the queue
/// only after a successful PUBACK. Fails over between brokers and reconnects with jittered exponential backoff.
/// The thread sleeps in `poll()` on the MQTT socket and the queue's wake signal: it runs when a record arrives or
/// the broker answers, and otherwise only for the MQTT keepalive.
public final class Publisher: Sendable {
    struct Control {
        var thread: OwnedThread?
        var stopRequested = false
        var drainTimeoutMs = 0
        var abandonRequested = false
        var stats = PublisherStats()
        /// The last retained message per topic, republished on every connect.
        var retained: [String: PublisherMachine.Retained] = [:]
        /// Command replies waiting for the publishing thread, and a requested republish of retained state.
        var commandOutbox = CommandOutbox()
    }

    let config: MQTTConfig
    let topics: TopicScheme
    let queue: any DeliveryQueue
    let clock: any GatewayClock
    let logger: Logger
    let version: String
    /// The session protocol (Sparkplug B), nil for Pantau's JSON contract.
    public let profile: (any SessionProfile)?
    /// Remote commands: the topic filter subscribed and where its messages go (nil: no commands).
    public let commands: CommandChannel?
    let control = Mutex(Control())
    /// Wakes the publishing thread for a stop or a simulated connection loss.
    let controlSignal = WakeSignal()
    private let progress = Atomic<UInt64>(0)

    /// How long a connection attempt may take up to the CONNACK before it counts as failed.
    static let connectTimeoutMs = 10_000
    /// How long a clean stop waits for the PUBACK of the retained offline status.
    static let offlineStatusTimeoutMs = 1_000

    public init(
        config: MQTTConfig, topics: TopicScheme, queue: any DeliveryQueue, clock: any GatewayClock, logger: Logger,
        version: String, profile: (any SessionProfile)? = nil, commands: CommandChannel? = nil
    ) {
        self.commands = commands
        self.profile = profile
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
        let thread = OwnedThread { [self] in PublisherSession(publisher: self).run() }
        control.withLock { $0.thread = thread }
    }

    /// Stops publishing: sends what is queued for up to `drainTimeoutMs` and waits for the PUBACKs in flight,
    /// publishes the retained `{"state":"offline","reason":"stopped"}`, disconnects cleanly (no Will) and joins the
    /// thread. Records still unacknowledged go back to the queue. Blocks: call it from a thread, not from the Swift
    /// concurrency pool.
    public func stop(drainTimeoutMs: Int) {
        let thread = control.withLock { control -> OwnedThread? in
            control.stopRequested = true
            control.drainTimeoutMs = drainTimeoutMs
            defer { control.thread = nil }
            return control.thread
        }
        controlSignal.signal()
        thread?.join()
    }

    /// A copy of the counters.
    public func snapshot() -> PublisherStats { control.withLock { $0.stats } }

    /// The retained messages this publisher would republish on connect, to hand to a successor (a reload).
    public func retainedMessages() -> [String: RetainedMessage] {
        control.withLock { $0.retained.mapValues { RetainedMessage($0) } }
    }

    /// Takes over a predecessor's retained messages, so a new broker gets availability and alert state at once.
    public func adoptRetained(_ messages: [String: RetainedMessage]) {
        control.withLock { control in
            for (topic, message) in messages where control.retained[topic] == nil {
                control.retained[topic] = message.value
            }
        }
    }

    /// Monotonic time (`GatewayClock.monotonicNanos`) when the publishing loop last ran, for the watchdog.
    public var lastProgressNanos: UInt64 { progress.load(ordering: .relaxed) }

    /// Closes the socket without DISCONNECT, as a dead link would (the broker then publishes the Will).
    func simulateConnectionLoss() {
        control.withLock { $0.abandonRequested = true }
        controlSignal.signal()
    }

    func touchProgress() {
        progress.store(clock.monotonicNanos(), ordering: .relaxed)
    }

    func updateStats(_ body: (inout PublisherStats) -> Void) {
        control.withLock { body(&$0.stats) }
    }
}

/// A retained message as last published, opaque outside this module.
public struct RetainedMessage: Sendable, Hashable {
    let topic: String
    let body: [UInt8]
    let qos: Int
    let contentType: String

    init(_ value: PublisherMachine.Retained) {
        topic = value.topic
        body = value.body
        qos = value.qos
        contentType = value.contentType
    }

    var value: PublisherMachine.Retained {
        PublisherMachine.Retained(topic: topic, body: body, qos: qos, contentType: contentType)
    }
}
