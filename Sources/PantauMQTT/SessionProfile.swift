import PantauCore

/// A session protocol on top of plain publishing (Sparkplug B is one): its own Will, messages published right after
/// every CONNACK (before the backlog), a say in each message's bytes at send time, subscriptions made on every
/// connect, and the messages that arrive on them. Without one the publisher speaks Pantau's JSON contract.
public protocol SessionProfile: Sendable {
    /// The Will of the next connection attempt (called once per attempt).
    func nextWill() -> (topic: String, payload: [UInt8])
    /// Published (QoS 0, not retained) when `connected` or `inbound` asks for them.
    func births(at now: UnixMillis) -> [(topic: String, payload: [UInt8])]
    /// CONNACK: publish the births now, or wait (for a primary host).
    func connected() -> SessionStep
    /// True while no queued message may be published (the births of this connection are not out).
    var holdsData: Bool { get }
    /// The bytes of a queued message as sent, or nil when the profile does not own it (then `PayloadFraming`).
    func frame(_ message: OutboundMessage, historical: Bool) -> [UInt8]?
    /// What a clean stop publishes instead of the retained offline status, before disconnecting.
    func cleanStop() -> (topic: String, payload: [UInt8])
    /// Topic filters subscribed (QoS 1) on every connect.
    var subscriptions: [String] { get }
    /// A message on one of them: births (a rebirth, or the host came online), a new session, or nothing.
    func inbound(_ message: MQTTMessage) -> SessionStep
}

/// What the publisher does next for its session profile.
public enum SessionStep: Sendable, Equatable {
    case none
    /// Publish the births, then the queued data.
    case births
    /// End this session (the `cleanStop` death, DISCONNECT) and connect again at once, to the next broker.
    case restart
}
