/// What a command asks for: the last level of `<prefix>/<site>/<gateway>/cmd/<verb>`.
public enum CommandVerb: String, Sendable, Hashable, CaseIterable, Codable {
    /// Poll one device now; the readings go out as telemetry and come back in the reply.
    case read
    /// Poll one device at another interval for a bounded time, then return to the configured one.
    case pollInterval = "poll-interval"
    /// Publish the retained state (status, availability, alerts) again.
    case republish
    /// The gateway's health, as `pantau status` shows it.
    case health
    /// The journal's counters: backlog, drops, sizes.
    case journal
    /// Write one writable point of a device, then read it back.
    case write

    /// Verbs that change what a device does need a signature; the others only read.
    public var needsSignature: Bool { self == .write || self == .pollInterval }

    /// Verbs that name a device.
    public var needsDevice: Bool { self == .read || self == .pollInterval || self == .write }
}
