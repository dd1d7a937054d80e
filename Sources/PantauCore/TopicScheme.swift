/// The MQTT topic hierarchy, in one place: `<prefix>/<site>/<gateway>/...` (see docs/mqtt.md).
public struct TopicScheme: Sendable, Hashable {
    public var base: String

    public init(prefix: String, identity: GatewayIdentity) {
        base = "\(prefix)/\(identity.site)/\(identity.id)"
    }

    /// Retained gateway state: `online` on connect, `offline` as the Will.
    public var status: String { "\(base)/status" }
    /// Periodic gateway health: journal depth, drops, buses, broker.
    public var health: String { "\(base)/health" }
    /// Test topic used by `pantau mqtt-test`.
    public var test: String { "\(base)/test" }

    public func device(_ device: String) -> String { "\(base)/devices/\(device)" }
    /// Retained device availability.
    public func availability(_ device: String) -> String { "\(self.device(device))/availability" }
    /// SenML telemetry batches.
    public func telemetry(_ device: String) -> String { "\(self.device(device))/telemetry" }
    /// Window aggregates, e.g. window `15m`.
    public func aggregate(_ device: String, window: Interval) -> String {
        "\(self.device(device))/aggregates/\(window)"
    }
    /// An air-quality index: `ispu` or `aqi`.
    public func index(_ device: String, _ name: String) -> String { "\(self.device(device))/index/\(name)" }
    /// Retained alert state of one point (flood level, rate of rise).
    public func alert(_ device: String, point: String) -> String { "\(self.device(device))/alerts/\(point)" }
    /// Rain intensity and BMKG category.
    public func rain(_ device: String) -> String { "\(self.device(device))/rain" }
}
