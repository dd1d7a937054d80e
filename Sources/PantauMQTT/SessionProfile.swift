import PantauCore

/// A session protocol on top of plain publishing (Sparkplug B is one): its own Will, messages published right after
/// every CONNACK (before the backlog), a say in each message's bytes at send time, subscriptions made on every
/// connect, and the messages that arrive on them. Without one the publisher speaks Pantau's JSON contract.
public protocol SessionProfile: Sendable {
    /// The Will of the next connection attempt (called once per attempt).
    func nextWill() -> (topic: String, payload: [UInt8])
    /// Published (QoS 0, not retained) after CONNACK, and again when `inbound` asks for it.
    func births(at now: UnixMillis) -> [(topic: String, payload: [UInt8])]
    /// The bytes of a queued message as sent, or nil when the profile does not own it (then `PayloadFraming`).
    func frame(_ message: OutboundMessage, historical: Bool) -> [UInt8]?
    /// What a clean stop publishes instead of the retained offline status, before disconnecting.
    func cleanStop() -> (topic: String, payload: [UInt8])
    /// Topic filters subscribed (QoS 1) on every connect.
    var subscriptions: [String] { get }
    /// A message on one of them; true asks for the births to be published again (a rebirth).
    func inbound(_ message: MQTTMessage) -> Bool
}
