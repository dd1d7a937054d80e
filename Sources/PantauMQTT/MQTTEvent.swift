/// Something the broker or the library reported, handed from a libmosquitto callback to the thread that loops.
public enum MQTTEvent: Sendable, Hashable {
    /// CONNACK arrived: reason code 0 is success, ≥ 0x80 a refusal (see `MQTTError.connectRefused`).
    case connected(reasonCode: Int)
    /// The connection ended: 0 after our own disconnect, otherwise a broker reason code or a `MOSQ_ERR_*` value.
    case disconnected(reasonCode: Int)
    /// PUBACK for a QoS 1 message (reason < 0x80 is success), or a QoS 0 message written to the socket.
    case published(mid: Int32, reasonCode: Int)
    /// SUBACK: one granted QoS or failure reason code (≥ 0x80) per topic filter.
    case subscribed(mid: Int32, granted: [Int])
    /// An application message on a subscribed topic.
    case message(MQTTMessage)
}

/// An application message received from the broker.
public struct MQTTMessage: Sendable, Hashable {
    /// The topic it was published on.
    public var topic: String
    /// The payload bytes as sent.
    public var payload: [UInt8]
    /// The QoS it was delivered with.
    public var qos: Int
    /// Set for a retained message (for live messages only with a retain-as-published subscription).
    public var retain: Bool
    /// MQTT 5 content type, when the publisher set one.
    public var contentType: String?
    /// MQTT 5 user properties, in the order they were sent.
    public var userProperties: [UserProperty]
    /// MQTT 5 Response Topic of a request (commands reply there).
    public var responseTopic: String?
    /// MQTT 5 Correlation Data of a request, returned unchanged with the reply.
    public var correlationData: [UInt8]?

    public init(
        topic: String, payload: [UInt8], qos: Int, retain: Bool, contentType: String? = nil,
        userProperties: [UserProperty] = []
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.contentType = contentType
        self.userProperties = userProperties
    }

    /// The payload as UTF-8 text.
    public var text: String { String(decoding: payload, as: UTF8.self) }
}

/// One MQTT 5 user property (a name/value pair; names may repeat).
public struct UserProperty: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}
