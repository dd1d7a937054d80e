import PantauCore

/// The retained gateway status on `TopicScheme.status`: `online` on connect, `offline` as the Will and on stop.
enum StatusPayload {
    static func online(version: String, at time: UnixMillis) -> [UInt8] {
        PayloadEncoder.encode(GatewayStatusPayload(online: true, version: version, at: time))
    }

    /// `reason` is `connection lost` for the Will (the broker sends it when we vanish) and `stopped` on a clean stop.
    static func offline(reason: String, version: String, at time: UnixMillis) -> [UInt8] {
        PayloadEncoder.encode(GatewayStatusPayload(online: false, version: version, at: time, reason: reason))
    }
}
