/// Ready-to-journal messages for the intelligence payloads: topic, kind, retain flag and acquisition time.
extension AggregatePayload {
    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .aggregate, topic: topics.aggregate(device, window: Interval(milliseconds: windowMs)),
            body: try jsonBody(), device: device, acquiredAt: end)
    }
}

extension ISPUPayload {
    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .aggregate, topic: topics.index(device, "ispu"), body: try jsonBody(), device: device, acquiredAt: at)
    }
}

extension AQIPayload {
    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .aggregate, topic: topics.index(device, "aqi"), body: try jsonBody(), device: device, acquiredAt: at)
    }
}

extension FloodAlertPayload {
    /// Retained, so a command center that subscribes later sees the current level at once.
    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .alert, topic: topics.alert(device, point: point), body: try jsonBody(), retain: true,
            device: device, acquiredAt: at)
    }
}

extension RainPayload {
    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .aggregate, topic: topics.rain(device), body: try jsonBody(), device: device, acquiredAt: at)
    }
}
