import PantauCore

/// What the publisher has done so far, for `pantau status`, the health topic and the watchdog.
public struct PublisherStats: Sendable, Hashable {
    /// Connected to a broker (CONNACK success and not lost since).
    public var connected = false
    /// `host:port` of the current broker, or of the last one tried.
    public var broker: String?
    /// Successful connections since start.
    public var connects = 0
    /// Established connections lost since start (a clean stop is not counted).
    public var disconnects = 0
    /// Connection attempts that failed before a successful CONNACK (refused, unreachable, TLS, timeout).
    public var failedAttempts = 0
    public var lastError: MQTTError?
    /// Journal records sent and waiting for PUBACK.
    public var inFlight = 0
    /// Journal records handed to the library.
    public var publishedTotal = 0
    /// Journal records the broker acknowledged with a success reason code.
    public var ackedTotal = 0
    /// PUBACKs with a failure reason code (≥ 0x80); the record is retried later.
    public var rejectedTotal = 0
    /// Wall-clock time of the last journal record handed to the library.
    public var lastPublishAt: UnixMillis?

    public init() {}
}
