import PantauCore

/// Counters of one bus since its poller started, for `pantau status`, health messages and tuning.
public struct BusStats: Sendable, Hashable {
    public var bus: String
    /// Whether the port or TCP connection is open.
    public var connected: Bool
    /// Transaction attempts, retries included.
    public var transactions: Int
    public var timeouts: Int
    public var crcErrors: Int
    /// Failed attempts other than timeouts and CRC errors (exceptions, bad data, connection).
    public var otherErrors: Int
    /// Mean duration of a successful transaction, in milliseconds (0 before the first).
    public var meanResponseMs: Double
    /// Share of time the bus spent in transactions since start, 0 to 1.
    public var utilisation: Double
    /// Polls that started a whole interval or more late: the bus cannot serve its schedule.
    public var cycleOverruns: Int
    public var devices: [DeviceStats]

    public init(
        bus: String, connected: Bool, transactions: Int, timeouts: Int, crcErrors: Int, otherErrors: Int,
        meanResponseMs: Double, utilisation: Double, cycleOverruns: Int, devices: [DeviceStats]
    ) {
        self.bus = bus
        self.connected = connected
        self.transactions = transactions
        self.timeouts = timeouts
        self.crcErrors = crcErrors
        self.otherErrors = otherErrors
        self.meanResponseMs = meanResponseMs
        self.utilisation = utilisation
        self.cycleOverruns = cycleOverruns
        self.devices = devices
    }
}

/// The health of one device on a bus.
public struct DeviceStats: Sendable, Hashable {
    public var name: String
    public var unitId: Int
    /// Nil until the first poll has decided it.
    public var online: Bool?
    /// Acquisition time of the last poll that produced readings.
    public var lastReadingAt: UnixMillis?
    public var consecutiveErrors: Int
    public var errorsTotal: Int
    public var polls: Int
    /// The interval in force now: configured, shortened by an alert, or stretched by offline backoff.
    public var interval: Interval
    public var lastError: ModbusError?

    public init(
        name: String, unitId: Int, online: Bool?, lastReadingAt: UnixMillis?, consecutiveErrors: Int,
        errorsTotal: Int, polls: Int, interval: Interval, lastError: ModbusError?
    ) {
        self.name = name
        self.unitId = unitId
        self.online = online
        self.lastReadingAt = lastReadingAt
        self.consecutiveErrors = consecutiveErrors
        self.errorsTotal = errorsTotal
        self.polls = polls
        self.interval = interval
        self.lastError = lastError
    }
}
