/// Retained device availability: `online` after a good poll, `offline` when the device stopped answering.
public struct AvailabilityPayload: Encodable, Sendable {
    public var state: String
    public var reason: String?
    public var ts: Int64

    public init(online: Bool, reason: String?, at time: UnixMillis) {
        state = online ? "online" : "offline"
        self.reason = reason
        ts = time
    }
}

/// Retained gateway status; the `offline` form is the MQTT Will. The topic names the site and gateway.
public struct GatewayStatusPayload: Encodable, Sendable {
    public var state: String
    public var version: String
    /// When the gateway connected (online), or the connect the Will belongs to / the clean stop (offline).
    public var ts: Int64
    public var reason: String?

    public init(online: Bool, version: String, at time: UnixMillis, reason: String? = nil) {
        state = online ? "online" : "offline"
        self.version = version
        ts = time
        self.reason = reason
    }
}
