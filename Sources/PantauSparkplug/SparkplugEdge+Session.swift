import PantauCore
import PantauMQTT

/// The edge node as the publisher's session profile: NDEATH as the Will, NBIRTH/DBIRTH after every connect, DDATA
/// framed with seq (and `is_historical` for backlog) at send time, NCMD `Node Control/Rebirth` answered by births.
extension SparkplugEdge: SessionProfile {
    /// The content type of Sparkplug messages in the journal and on the wire (MQTT 5 property).
    public static let contentType = "application/vnd.sparkplug.b"

    public func frame(_ message: OutboundMessage, historical: Bool) -> [UInt8]? {
        guard message.topic.hasPrefix(SparkplugTopics.namespace + "/") else { return nil }
        return frame(message.body, topic: message.topic, historical: historical)
    }

    public func cleanStop() -> (topic: String, payload: [UInt8]) { currentDeath() }

    public var subscriptions: [String] { [topics.ncmd] }

    public func inbound(_ message: MQTTMessage) -> Bool {
        guard message.topic == topics.ncmd, let payload = try? SpBPayload(serializedBytes: message.payload) else {
            return false
        }
        return payload.metrics.contains { $0.name == Self.rebirthMetric && $0.booleanValue }
    }

    /// The content type of DDATA in the journal and on the wire (MQTT 5 property).

    /// The queued DDATA message of one poll, or nil when none of its points is a metric.
    public func dataMessage(_ readings: [Reading], device: String, acquiredAt: UnixMillis) -> OutboundMessage? {
        guard let body = data(readings, device: device) else { return nil }
        return OutboundMessage(
            kind: .telemetry, topic: topics.ddata(device), body: body, device: device, acquiredAt: acquiredAt,
            contentType: Self.contentType)
    }
}
