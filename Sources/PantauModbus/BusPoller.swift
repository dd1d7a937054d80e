import Logging
import PantauCore
import PantauPlatform
import Synchronization

/// How a poller turns a profile into requests and raw registers into readings. `standard` uses PantauCore's
/// planner and decoder; tests may substitute their own.
public struct PollCodec: Sendable {
    public var plan: @Sendable (_ points: [PointSpec], _ timing: ProfileTiming) -> [ReadRequest]
    public var decode:
        @Sendable (
            _ profile: DeviceProfile, _ image: RegisterImage, _ device: String, _ acquiredAt: UnixMillis
        ) -> [Reading]

    public init(
        plan: @escaping @Sendable ([PointSpec], ProfileTiming) -> [ReadRequest],
        decode: @escaping @Sendable (DeviceProfile, RegisterImage, String, UnixMillis) -> [Reading]
    ) {
        self.plan = plan
        self.decode = decode
    }

    /// ReadPlanner.plan and RegisterDecoder.decode.
    public static let standard = PollCodec(
        plan: { ReadPlanner.plan(points: $0, timing: $1) },
        decode: { RegisterDecoder.decode(profile: $0, image: $1, device: $2, acquiredAt: $3) })
}

/// Polls every device of one bus on a thread of its own, which alone owns the bus's Modbus context.
/// Callbacks run on that thread and must hand over quickly, never block.
public final class BusPoller: Sendable {
    /// Opens the transport of a bus; called again after the connection is lost.
    public typealias TransportFactory = @Sendable (BusConfig) throws(ModbusError) -> any ModbusTransport

    public let bus: BusConfig
    let clock: any GatewayClock
    let logger: Logger
    let transportFactory: TransportFactory
    let onPoll: @Sendable (DevicePoll) -> Void
    let onAvailability: @Sendable (_ device: String, _ online: Bool, _ reason: String) -> Void
    let codec: PollCodec
    let policy: OfflinePolicy
    /// Protocol pauses (inter-frame silence, inter-request delay); injected so tests advance a fake clock.
    let pause: @Sendable (_ micros: Int) -> Void
    let reconnectMinMs: Int64 = 1000
    let reconnectMaxMs: Int64 = 30_000
    let overrunLogEveryNanos: UInt64 = 60_000_000_000

    let shared: Mutex<SharedBusState>
    private let thread = Mutex<OwnedThread?>(nil)
    /// While the bus thread is inside one bounded Modbus read: the monotonic time by which it must return; else 0.
    let ioDeadline = Atomic<UInt64>(0)

    public init(
        bus: BusConfig, devices: [DeviceConfig], clock: any GatewayClock, logger: Logger,
        transportFactory: @escaping TransportFactory = BusPoller.libmodbusTransport,
        codec: PollCodec = .standard, policy: OfflinePolicy = OfflinePolicy(),
        pause: @escaping @Sendable (_ micros: Int) -> Void = BusPoller.sleepingPause,
        onPoll: @escaping @Sendable (DevicePoll) -> Void,
        onAvailability: @escaping @Sendable (_ device: String, _ online: Bool, _ reason: String) -> Void
    ) {
        self.bus = bus
        self.clock = clock
        var logger = logger
        logger[metadataKey: "bus"] = "\(bus.name)"
        self.logger = logger
        self.transportFactory = transportFactory
        self.codec = codec
        self.policy = policy
        self.pause = pause
        self.onPoll = onPoll
        self.onAvailability = onAvailability
        let now = clock.monotonicNanos()
        shared = Mutex(SharedBusState(devices: devices, startedNanos: now))
    }

    /// Opens libmodbus contexts: one per bus, RTU or TCP (a TCP bus addresses its devices by unit id).
    public static let libmodbusTransport: TransportFactory = { (bus: BusConfig) throws(ModbusError) in
        switch bus.transport {
        case .rtu(let rtu):
            return try ModbusConnection.rtu(
                device: rtu.device, serial: rtu.serial, rs485: rtu.rs485, bus: bus.name,
                logger: Logger(label: "pantau.modbus"))
        case .tcp(let host, let port):
            return try ModbusConnection.tcp(
                host: host, port: port, bus: bus.name, logger: Logger(label: "pantau.modbus"))
        case .rtuOverTCP(let settings):
            return RTUOverTCPTransport(settings: settings, bus: bus.name)
        case .uart(let settings):
            return try FrameTransport(settings: settings, bus: bus.name)
        case .sdi12(let settings):
            return SDI12Transport(settings: settings, bus: bus.name)
        }
    }

    /// Wakes the bus thread from its wait for the next due poll (stop, interval change, new devices).
    let wake = WakeSignal()
    /// The longest the bus thread sleeps without looking at the clock: well under the watchdog's stall limit.
    static let longestWaitMs: UnixMillis = 5000

    /// The production pause: sleeps the bus thread.
    public static let sleepingPause: @Sendable (_ micros: Int) -> Void = { sleepMicros($0) }

    /// Starts the bus thread; a second call does nothing.
    public func start() {
        thread.withLock { thread in
            guard thread == nil else { return }
            shared.withLock {
                $0.stopping = false
                $0.startedNanos = clock.monotonicNanos()
                $0.lastProgressNanos = $0.startedNanos
            }
            thread = OwnedThread { [self] in runLoop() }
        }
    }

    /// Stops polling and waits for the bus thread, which closes the port. At most one transaction's timeout.
    public func stop() {
        shared.withLock { $0.stopping = true }
        wake.signal()
        let running = thread.withLock { t -> OwnedThread? in
            defer { t = nil }
            return t
        }
        running?.join()
    }

    /// Overrides a device's poll interval (a flood alert shortens it); nil returns to the configured one.
    public func setPollInterval(device: String, _ interval: Interval?) {
        shared.withLock { $0.overrides[device] = interval }
        wake.signal()
    }

    /// Replaces the devices of this bus; devices kept by name keep their health and schedule.
    public func updateDevices(_ devices: [DeviceConfig]) {
        shared.withLock { $0.replaceDevices(devices) }
        wake.signal()
    }

    /// Monotonic time of the last transaction attempt or idle pass of the bus thread, for the systemd watchdog:
    /// it stops advancing only when the thread is stuck.
    public var lastProgressNanos: UInt64 { shared.withLock { $0.lastProgressNanos } }

    /// While the bus thread waits in a bounded read (a device's `timeout_ms`), the time it must be back by, else 0:
    /// bounded I/O in progress is progress, so the watchdog counts the thread stalled only past this deadline.
    public var busyUntilNanos: UInt64 { ioDeadline.load(ordering: .relaxed) }

    /// The bus and device counters now.
    public func snapshot() -> BusStats {
        let now = clock.monotonicNanos()
        return shared.withLock { s in
            let c = s.counters
            let elapsed = now > s.startedNanos ? Double(now - s.startedNanos) : 0
            return BusStats(
                bus: bus.name, connected: s.connected, transactions: c.transactions, timeouts: c.timeouts,
                crcErrors: c.crcErrors, otherErrors: c.otherErrors,
                meanResponseMs: c.successes > 0 ? Double(c.responseNanos) / Double(c.successes) / 1e6 : 0,
                utilisation: elapsed > 0 ? min(1, Double(c.busyNanos) / elapsed) : 0,
                cycleOverruns: c.overruns,
                devices: s.devices.map { device in
                    let health = s.health[device.name] ?? DeviceHealth()
                    return DeviceStats(
                        name: device.name, unitId: device.unitId, online: health.online,
                        lastReadingAt: health.lastReadingAt, consecutiveErrors: health.consecutiveErrors,
                        errorsTotal: health.errorsTotal, polls: health.polls,
                        interval: s.effectiveInterval(device, policy: policy), lastError: health.lastError)
                })
        }
    }

    var isStopping: Bool { shared.withLock { $0.stopping } }

    private func runLoop() {
        let worker = BusWorker(poller: self)
        logger.info("bus thread started", metadata: ["devices": "\(worker.deviceCount)"])
        while !isStopping {
            let next = worker.runDue()
            shared.withLock { $0.lastProgressNanos = clock.monotonicNanos() }
            let wait = next - clock.now()
            // Sleeps until the next poll is due or stop() / an interval change / new devices signal; at most
            // `longestWaitMs`, so the watchdog sees progress and a wall-clock jump is looked at again soon.
            if wait > 0 && wake.wait(timeoutMs: Int32(min(wait, Self.longestWaitMs))) { wake.drain() }
        }
        worker.shutdown()
        logger.info("bus thread stopped")
    }
}

/// State the bus thread shares with the rest of the gateway.
struct SharedBusState {
    struct Counters {
        var transactions = 0
        var successes = 0
        var timeouts = 0
        var crcErrors = 0
        var otherErrors = 0
        var responseNanos: UInt64 = 0
        var busyNanos: UInt64 = 0
        var overruns = 0
        /// TCP connections closed and reopened after repeated timeouts or an invalid reply.
        var reopens = 0
    }

    var devices: [DeviceConfig]
    var generation = 0
    var overrides: [String: Interval] = [:]
    /// Remote commands for the bus thread (read now, write), taken at its next turn.
    var requests: [BusRequest] = []
    /// Poll intervals set by a remote command until a wall-clock time, then reverted.
    var temporary: [String: TemporaryInterval] = [:]
    var health: [String: DeviceHealth] = [:]
    var counters = Counters()
    var stopping = false
    var connected = false
    var startedNanos: UInt64
    var lastProgressNanos: UInt64

    init(devices: [DeviceConfig], startedNanos: UInt64) {
        self.devices = devices
        self.startedNanos = startedNanos
        self.lastProgressNanos = startedNanos
        for device in devices { health[device.name] = DeviceHealth() }
    }

    mutating func replaceDevices(_ new: [DeviceConfig]) {
        devices = new
        generation += 1
        var kept: [String: DeviceHealth] = [:]
        for device in new { kept[device.name] = health[device.name] ?? DeviceHealth() }
        health = kept
    }

    func effectiveInterval(_ device: DeviceConfig, policy: OfflinePolicy) -> Interval {
        // A zero interval would poll in a tight loop; 100 ms is the fastest any sensor here needs.
        if let command = temporary[device.name] {
            // A flood alert that polls faster still wins over an operator's slower request.
            let fastest = min(command.interval.milliseconds, overrides[device.name]?.milliseconds ?? .max)
            return Interval(milliseconds: max(100, fastest))
        }
        if let alert = overrides[device.name] {
            // A flood alert's interval holds while the device is offline too: probes follow it without backoff.
            return Interval(milliseconds: max(100, alert.milliseconds))
        }
        let floored = Interval(milliseconds: max(100, device.pollInterval.milliseconds))
        return (health[device.name] ?? DeviceHealth()).effectiveInterval(base: floored, policy: policy)
    }
}
