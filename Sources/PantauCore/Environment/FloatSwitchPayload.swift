/// `.../devices/<dev>/alerts/<point>` for a float switch: retained, journaled as an alert, sent when the debounced
/// state changes (`wet` when the water reaches the switch).
public struct FloatSwitchPayload: EnvironmentPayload, Hashable {
    public var device: String
    public var point: String
    public var at: UnixMillis
    public var state: String
    public var samples: Int
    public var dwellMs: Int64

    enum CodingKeys: String, CodingKey {
        case device, point, at, state, samples
        case dwellMs = "dwell_ms"
    }

    public init(device: String, switchConfig: FloatSwitchConfig, wet: Bool, at: UnixMillis) {
        self.device = device
        point = switchConfig.point
        self.at = at
        state = wet ? "wet" : "dry"
        samples = switchConfig.samples
        dwellMs = switchConfig.dwell.milliseconds
    }

    public func message(topics: TopicScheme) throws -> OutboundMessage {
        OutboundMessage(
            kind: .alert, topic: topics.alert(device, point: point), body: try jsonBody(), retain: true,
            device: device, acquiredAt: at)
    }
}
