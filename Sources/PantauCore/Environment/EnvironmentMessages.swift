/// Ready-to-journal messages for the intelligence payloads: topic, kind, retain flag and acquisition time.
extension AggregatePayload {
    /// `aggregates/<window>`, acquired at the window's end.
    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .aggregate, topic: topics.aggregate(device, window: Interval(milliseconds: windowMs)),
            body: try jsonBody(), device: device, acquiredAt: end)
    }
}

extension ISPUPayload {
    /// `index/ispu`.
    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .aggregate, topic: topics.index(device, "ispu"), body: try jsonBody(), device: device, acquiredAt: at)
    }
}

extension AQIPayload {
    /// `index/aqi`.
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
    /// `rain`.
    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .aggregate, topic: topics.rain(device), body: try jsonBody(), device: device, acquiredAt: at)
    }
}
