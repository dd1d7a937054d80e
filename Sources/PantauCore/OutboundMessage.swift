/// What a journaled message is, which decides its order at replay and what a bound may drop first.
public enum MessageKind: Int, Sendable, Hashable, CaseIterable {
    /// Flood and other alerts: sent first, dropped last.
    case alert = 0
    /// Gateway health and device availability.
    case status = 1
    /// Window aggregates and indices.
    case aggregate = 2
    /// Raw telemetry: dropped first when a bound forces it.
    case telemetry = 3

    public var name: String {
        switch self {
        case .alert: return "alert"
        case .status: return "status"
        case .aggregate: return "aggregate"
        case .telemetry: return "telemetry"
        }
    }
}

/// A message waiting to be published: appended to the journal first, removed only after a successful PUBACK.
///
/// `body` is JSON that starts with `{` or `[{`. The publisher frames it at send time, adding the gateway-wide
/// sequence (`"seq"`) and, for a replayed backlog message, `"hist":true` (see `PayloadFraming`).
public struct OutboundMessage: Sendable, Hashable {
    public var kind: MessageKind
    public var topic: String
    public var body: [UInt8]
    public var qos: UInt8
    public var retain: Bool
    /// The device the message is about, for per-device drop counts and ordering; nil for gateway messages.
    public var device: String?
    /// When the data was acquired (or the event happened).
    public var acquiredAt: UnixMillis
    /// MQTT 5 content type, e.g. `application/senml+json`.
    public var contentType: String
    /// The boot and boottime `acquiredAt` stands for, and the body's time quality (issue 14); journaled beside it.
    public var stamp: ClockStamp?

    public init(
        kind: MessageKind, topic: String, body: [UInt8], qos: UInt8 = 1, retain: Bool = false,
        device: String?, acquiredAt: UnixMillis, contentType: String = "application/json", stamp: ClockStamp? = nil
    ) {
        self.stamp = stamp
        self.kind = kind
        self.topic = topic
        self.body = body
        self.qos = qos
        self.retain = retain
        self.device = device
        self.acquiredAt = acquiredAt
        self.contentType = contentType
    }
}

/// A journaled message with its gateway-wide sequence number (strictly increasing, never reused).
public struct JournalRecord: Sendable, Hashable {
    public var seq: Int64
    public var message: OutboundMessage

    public init(seq: Int64, message: OutboundMessage) {
        self.seq = seq
        self.message = message
    }
}

/// The hand-over between acquisition and publication. Implemented durably by `PantauJournal`.
public protocol MessageSink: AnyObject, Sendable {
    /// Queues messages for the next group commit. Never blocks on the network.
    func append(_ messages: [OutboundMessage])
}

/// Adds the delivery fields to a journaled body at send time, without re-encoding it.
public enum PayloadFraming {
    /// `{"a":1}` becomes `{"seq":7,"a":1}`; `[{"bn":..}]` becomes `[{"seq":7,"bn":..}]`; with `historical`,
    /// `"hist":true` follows the sequence.
    public static func frame(_ body: [UInt8], seq: Int64, historical: Bool) -> [UInt8] {
        let fields = Array((historical ? "\"seq\":\(seq),\"hist\":true" : "\"seq\":\(seq)").utf8)
        var start = 0
        if body.first == UInt8(ascii: "[") { start = 1 }
        guard body.count > start, body[start] == UInt8(ascii: "{") else { return body }
        let insertAt = start + 1
        var out: [UInt8] = []
        out.reserveCapacity(body.count + fields.count + 1)
        out.append(contentsOf: body[..<insertAt])
        out.append(contentsOf: fields)
        let rest = body[insertAt...]
        if rest.first != UInt8(ascii: "}") { out.append(UInt8(ascii: ",")) }
        out.append(contentsOf: rest)
        return out
    }
}
