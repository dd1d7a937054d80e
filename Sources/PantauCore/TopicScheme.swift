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
    /// One audit event per remote command, accepted or refused.
    public var audit: String { "\(base)/audit" }

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

/// Bounds on the names a configuration puts into MQTT topics and the client id. MQTT allows 65535 bytes of UTF-8
/// per topic and, in 3.1.1, client ids of 23 bytes that brokers such as mosquitto extend; these bounds keep the
/// longest topic (`<prefix>/<site>/<id>/devices/<device>/alerts/<point>`) under 600 bytes and the default client id
/// (`pantau-<site>-<id>`) within `clientId`, so nothing a config says can make the MQTT client refuse it at run time.
public enum IdentifierLimits {
    /// `site`, bus and device names; profile ids and point names.
    public static let name = 64
    /// The gateway's `id`.
    public static let gatewayId = 32
    /// `mqtt.client_id`, in bytes (mosquitto accepts it; MQTT 5 allows long ids).
    public static let clientId = 128
    /// `mqtt.topic_prefix`, in bytes.
    public static let topicPrefix = 256
    /// `mqtt.username`, in bytes.
    public static let username = 256

    /// C0 and C1 control characters and DEL, which MQTT topics and ids should not carry (NUL is forbidden).
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
