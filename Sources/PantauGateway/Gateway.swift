import Dispatch
import FoundationEssentials
import Logging
import PantauCore
import PantauJournal
import PantauMQTT
import PantauModbus
import PantauPlatform
import PantauSparkplug
import Synchronization

/// The running gateway: one poller thread per bus, the pipeline, the journal, the publisher and the status socket.
/// The journal is the only hand-over between acquisition (pollers, pipeline) and publication (publisher).
public final class Gateway: Sendable {
    public let journal: Journal
    let pipeline: ReadingPipeline
    let clock: GatewayClock
    let logger: Logger
    let startedAt: UnixMillis
    let transportFactory: BusPoller.TransportFactory
    private let parts: Mutex<ReloadableParts>
    private let housekeeping = Mutex<OwnedThread?>(nil)
    private let stopping = Atomic<Bool>(false)
    private let housekeepingProgress = Atomic<UInt64>(0)
    let commands: CommandCenter

    /// What a configuration reload replaces: the configuration itself, the bus pollers, the publisher and the
    /// status socket.
    struct ReloadableParts {
        var config: GatewayConfig
        var pollers: [String: BusPoller]
        var publisher: Publisher
        var statusServer: StatusServer?
    }

    /// How often the health message is queued.
    public static let healthInterval: Int64 = 60_000
    /// How often the pipeline's state (open windows, index averages, alert levels) is saved while running; a clean
    /// stop saves it too. It is large (about 750 KB for 50 devices x 20 points) and rewritten whole, so saving it
    /// every minute was most of what the gateway wrote to disk (26 of 27 bytes per reading at the standard load):
    /// a crash now loses at most ten minutes of partial window statistics, which then report a lower coverage.
    public static let stateSaveInterval: Int64 = 600_000
    static let stateKey = "pipeline-state"

    public struct StartError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Opens the journal (running its integrity check) and builds every part; nothing runs until `start()`.
    public init(
        config: GatewayConfig, clock: GatewayClock = KernelClock(), logger: Logger,
        transportFactory: @escaping BusPoller.TransportFactory = BusPoller.libmodbusTransport
    ) throws {
        self.clock = clock
        self.logger = logger
        self.transportFactory = transportFactory
        startedAt = clock.now()
        do {
            journal = try Journal(
                config: config.journal, clock: clock, logger: logger, liveWindow: config.mqtt.liveWindow)
        } catch {
            throw StartError(message: "cannot open the journal \(config.journal.path): \(error)")
        }
        for event in journal.startupEvents { logger.error("journal: \(event)") }
        let pollersBox = PollerDirectory()
        var sparkplug: SparkplugEdge?
        if config.mqtt.format == .sparkplug {
            let identity =
                config.sparkplug
                ?? SparkplugConfig(groupId: config.identity.site, edgeNodeId: config.identity.id)
            // bdSeq lives in the journal's state table, so the NBIRTH after a restart never repeats the last Will's.
            let saved = journal.loadState(key: SparkplugEdge.bdSeqStateKey)
                .flatMap { UInt64(String(decoding: $0, as: UTF8.self)) }
            let store = journal
            sparkplug = SparkplugEdge(
                topics: SparkplugTopics(group: identity.groupId, edgeNode: identity.edgeNodeId),
                devices: config.devices, windows: config.aggregation.windows, savedBdSeq: saved,
                primaryHostId: identity.primaryHostId,
                saveBdSeq: { store.saveState(key: SparkplugEdge.bdSeqStateKey, Array(String($0).utf8)) },
                warn: { [logger] in logger.warning("\($0)") })
        }
        pipeline = ReadingPipeline(
            config: config, sink: journal, clock: clock, logger: logger,
            onPollInterval: { device, interval in pollersBox.setPollInterval(device: device, interval) },
            sparkplug: sparkplug)
        if let saved = journal.loadState(key: Self.stateKey) { pipeline.restore(saved) }
        commands = CommandCenter(config: config, sink: journal, clock: clock, logger: logger, pollers: pollersBox)
        if let sparkplug, config.commands.listening { commands.attach(sparkplug: sparkplug) }
        let publisher = Publisher(
            config: config.mqtt, topics: TopicScheme(prefix: config.mqtt.topicPrefix, identity: config.identity),
            queue: journal, clock: clock, logger: logger, version: PantauVersion.current, profile: sparkplug,
            commands: commands.channel(for: config))
        parts = Mutex(ReloadableParts(config: config, pollers: [:], publisher: publisher, statusServer: nil))
        pollerDirectory = pollersBox
        commands.attach(
            CommandCenter.Hooks(
                health: { [weak self] in self?.health() },
                publisher: { [weak self] in self?.parts.withLock { $0.publisher } }))
    }

    private let pollerDirectory: PollerDirectory

    /// Starts the publisher, one thread per bus, the status socket and the housekeeping thread.
    public func start() {
        let config = parts.withLock { $0.config }
        parts.withLock { $0.publisher.start() }
        startPollers(config)
        let server = StatusServer(path: config.statusSocket, logger: logger) { [self] in
            PayloadEncoder.encode(health())
        }
        do {
            try server.start()
            parts.withLock { $0.statusServer = server }
        } catch {
            logger.warning("status socket unavailable; `pantau status` will not work", metadata: ["error": "\(error)"])
        }
        // Progress counts from now, or the watchdog's first look would find housekeeping silent since boot.
        housekeepingProgress.store(clock.monotonicNanos(), ordering: .relaxed)
        housekeeping.withLock { $0 = OwnedThread { [self] in housekeepingLoop() } }
    }

    private func startPollers(_ config: GatewayConfig) {
        let requested = pipeline.requestedPollIntervals()
        var started: [String: BusPoller] = [:]
        for bus in config.buses {
            let devices = config.devices.filter { $0.bus == bus.name }
            guard !devices.isEmpty else { continue }
            started[bus.name] = makePoller(bus, devices)
        }
        parts.withLock { $0.pollers.merge(started) { _, new in new } }
        pollerDirectory.update(parts.withLock { $0.pollers }, devices: config.devices)
        for (device, interval) in requested { pollerDirectory.setPollInterval(device: device, interval) }
        for poller in started.values { poller.start() }
    }

    private func makePoller(_ bus: BusConfig, _ devices: [DeviceConfig]) -> BusPoller {
        let wedge = Failpoint.wedgeBus(bus.name)
        let started = clock.monotonicNanos()
        return BusPoller(
            bus: bus, devices: devices, clock: clock, logger: logger, transportFactory: transportFactory,
            onPoll: { [pipeline, clock] poll in
                if let after = wedge, clock.monotonicNanos() - started > after { Failpoint.hang() }
                pipeline.handle(poll)
            },
            onAvailability: { [pipeline] device, online, reason in
                pipeline.availability(device: device, online: online, reason: reason)
            })
    }

    /// Applies a new configuration without a restart: buses and devices are added, changed or removed; the journal
    /// (and so every backlog) stays. A new journal path or MQTT settings need a restart or reconnect (see README).
    public func reload(_ new: GatewayConfig) {
        let old = parts.withLock { $0.config }
        if new.journal.path != old.journal.path {
            logger.warning("journal.path changed; the running journal stays at \(old.journal.path) until a restart")
        }
        pipeline.reconfigure(new)
        commands.reconfigure(new)
        var stop: [BusPoller] = []
        var start: [BusPoller] = []
        parts.withLock { p in
            for (name, poller) in p.pollers {
                let newBus = new.buses.first { $0.name == name }
                let devices = new.devices.filter { $0.bus == name }
                if newBus != poller.bus || devices.isEmpty {
                    stop.append(poller)
                    p.pollers[name] = nil
                } else {
                    poller.updateDevices(devices)
                }
            }
            for bus in new.buses where p.pollers[bus.name] == nil {
                let devices = new.devices.filter { $0.bus == bus.name }
                guard !devices.isEmpty else { continue }
                let poller = makePoller(bus, devices)
                p.pollers[bus.name] = poller
                start.append(poller)
            }
            p.config = new
        }
        for poller in stop { poller.stop() }
        pollerDirectory.update(parts.withLock { $0.pollers }, devices: new.devices)
        for poller in start { poller.start() }
        if new.mqtt != old.mqtt || new.identity != old.identity {
            let publisher = Publisher(
                config: new.mqtt, topics: TopicScheme(prefix: new.mqtt.topicPrefix, identity: new.identity),
                queue: journal, clock: clock, logger: logger, version: PantauVersion.current,
                profile: parts.withLock { $0.publisher.profile }, commands: commands.channel(for: new))
            let previous = parts.withLock { p -> Publisher in
                defer { p.publisher = publisher }
                return p.publisher
            }
            previous.stop(drainTimeoutMs: 2000)
            // The new broker (another port, another host) has none of our retained state: republish it there.
            if new.mqtt.topicPrefix == old.mqtt.topicPrefix && new.identity == old.identity {
                publisher.adoptRetained(previous.retainedMessages())
            }
            publisher.start()
        }
        logger.info(
            "configuration reloaded", metadata: ["buses": "\(new.buses.count)", "devices": "\(new.devices.count)"])
    }

    /// Stops cleanly: buses first (no new readings), every device's availability `offline` (reason `stopped`),
    /// then everything unacknowledged is committed, the publisher sends what is queued and settles its in-flight
    /// window before the gateway's own offline status, and the journal closes.
    public func stop(drainTimeoutMs: Int = 5000) {
        stopping.store(true, ordering: .relaxed)
        housekeeping.withLock { t -> OwnedThread? in
            defer { t = nil }
            return t
        }?.join()
        let (pollers, publisher, server, devices) = parts.withLock { p in
            (Array(p.pollers.values), p.publisher, p.statusServer, p.config.devices.map(\.name))
        }
        stopPollers(pollers, within: Self.busStopLimitSeconds)
        for device in devices { pipeline.availability(device: device, online: false, reason: "stopped") }
        pipeline.tick()
        journal.saveState(key: Self.stateKey, pipeline.snapshot())
        do { try journal.flush() } catch { logger.error("journal flush at stop failed: \(error)") }
        publisher.stop(drainTimeoutMs: drainTimeoutMs)
        server?.stop()
        journal.close()
    }

    /// How long a stop waits for the bus threads; a thread wedged in a driver call is left behind, so the journal is
    /// still committed and the offline status still published within systemd's TimeoutStopSec.
    static let busStopLimitSeconds = 5

    private func stopPollers(_ pollers: [BusPoller], within seconds: Int) {
        let done = DispatchSemaphore(value: 0)
        for poller in pollers {
            OwnedThread {
                poller.stop()
                done.signal()
            }.detach()
        }
        let deadline = DispatchTime.now() + .seconds(seconds)
        for _ in pollers where done.wait(timeout: deadline) == .timedOut {
            logger.error("a bus thread did not stop within \(seconds) s (wedged in a driver call); stopping without it")
            return
        }
    }

    /// Monotonic progress times the systemd watchdog checks: every bus thread, the publisher and housekeeping.
    public func progressProbes() -> [(String, UInt64)] {
        parts.withLock { p in
            // A bus thread inside a bounded read is progressing until that read's deadline (issue 19.4).
            p.pollers.map { ("bus \($0.key)", max($0.value.lastProgressNanos, $0.value.busyUntilNanos)) }
                + [
                    ("publisher", p.publisher.lastProgressNanos),
                    ("housekeeping", housekeepingProgress.load(ordering: .relaxed)),
                ]
        }
    }

    /// A one-line state for systemd's STATUS= and the log.
    public func summary() -> String {
        let (config, connected) = parts.withLock { ($0.config, $0.publisher.snapshot().connected) }
        let pending = journal.stats().pending
        return
            "polling \(DiagnosticsFormat.counted(config.devices.count, "device")) on "
            + "\(DiagnosticsFormat.counted(config.buses.count, "bus", plural: "buses")); "
            + "broker \(connected ? "connected" : "not connected"); backlog \(pending)"
    }

    public func health() -> GatewayHealth {
        let (config, pollers, publisher) = parts.withLock { p in (p.config, Array(p.pollers.values), p.publisher) }
        return GatewayHealth(
            identity: config.identity, now: clock.now(), startedAt: startedAt, journal: journal.stats(),
            events: journal.startupEvents, publisher: publisher.snapshot(),
            buses: pollers.map { $0.snapshot() }.sorted { $0.bus < $1.bus }, clock: pipeline.clockStatus())
    }

    /// Once a second: lets windows close and alerts go stale; every minute a health message; every ten minutes a
    /// state save.
    private func housekeepingLoop() {
        var lastHealth = clock.now()
        var lastStateSave = lastHealth
        while !stopping.load(ordering: .relaxed) {
            sleepMillis(1000)
            housekeepingProgress.store(clock.monotonicNanos(), ordering: .relaxed)
            pipeline.tick()
            if let c = pipeline.takeTimeCorrection() { journal.correctTimes(bootId: c.bootId, offset: c.offset) }
            let now = clock.now()
            if now - lastHealth >= Self.healthInterval {
                lastHealth = now
                let topics = parts.withLock {
                    TopicScheme(prefix: $0.config.mqtt.topicPrefix, identity: $0.config.identity)
                }
                journal.append([
                    ReadingPipeline.marked(
                        OutboundMessage(
                            kind: .status, topic: topics.health, body: PayloadEncoder.encode(health()), device: nil,
                            acquiredAt: now), pipeline.clockStatus().synced)
                ])
            }
            if now - lastStateSave >= Self.stateSaveInterval {
                lastStateSave = now
                journal.saveState(key: Self.stateKey, pipeline.snapshot())
            }
        }
    }
}

/// Routes poll-interval requests from the pipeline to the bus thread that owns the device.
final class PollerDirectory: Sendable {
    private let routes = Mutex<[String: BusPoller]>([:])

    func update(_ pollers: [String: BusPoller], devices: [DeviceConfig]) {
        var map: [String: BusPoller] = [:]
        for d in devices { if let p = pollers[d.bus] { map[d.name] = p } }
        routes.withLock { $0 = map }
    }

    /// The poller of the bus a device is on.
    func poller(for device: String) -> BusPoller? { routes.withLock { $0[device] } }

    func setPollInterval(device: String, _ interval: Interval) {
        routes.withLock { $0[device] }?.setPollInterval(device: device, interval)
    }
}
