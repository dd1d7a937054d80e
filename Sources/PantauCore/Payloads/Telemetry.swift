import FoundationEssentials

/// One SenML record (RFC 8428). `q` (quality) is Pantau's extension; the first record also carries the base name and
/// time, and at send time the delivery fields `seq` and `hist` (see docs/mqtt.md).
struct SenMLRecord: Encodable {
    var bn: String?
    var bt: Double?
    var n: String
    var u: String?
    var v: SenMLNumber?
    var vs: String?
    var vb: Bool?
    var q: String?
}

/// A JSON number for a SenML `v` (and the CLI's JSON): a double, or a 64-bit integer written with all its digits
/// (a Double would round it beyond 2^53).
public enum SenMLNumber: Encodable, Sendable, Hashable {
    case double(Double)
    case signed(Int64)
    case unsigned(UInt64)

    /// The number of a value: nil for text, flags and non-finite doubles.
    public init?(_ value: PointValue) {
        switch value {
        case .number(let d) where d.isFinite: self = .double(d)
        case .integer(let i): self.init(exactly: i)
        default: return nil
        }
    }

    public init(exactly value: Int128) {
        if let signed = Int64(exactly: value) {
            self = .signed(signed)
        } else if let unsigned = UInt64(exactly: value) {
            self = .unsigned(unsigned)
        } else {
            self = .double(Double(value))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .double(let d): try c.encode(d)
        case .signed(let i): try c.encode(i)
        case .unsigned(let u): try c.encode(u)
        }
    }
}

/// JSON bodies of the messages the gateway itself produces: telemetry, availability, status and health.
public enum PayloadEncoder {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// Encodes any payload struct; the bodies all start with `{` or `[{` as `PayloadFraming` requires.
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        // Encoding plain structs of strings and finite numbers cannot fail; a failure is a programming error.
        do { return Array(try encoder.encode(value)) } catch { preconditionFailure("JSON encoding failed: \(error)") }
    }

    /// The SenML base name of a device: `urn:dev:pantau:<site>:<gateway>:<device>:`.
    public static func baseName(identity: GatewayIdentity, device: String) -> String {
        "urn:dev:pantau:\(identity.site):\(identity.id):\(device):"
    }

    /// A SenML pack of the readings of one poll; nil when there is nothing to send. Readings without a value carry
    /// only their name and quality: a missing value is never sent as a number.
    ///
    /// `compact` (`mqtt.format: senml-compact`) leaves out what the contract already fixes: the base name (the topic
    /// names the device), the unit (the device profile fixes it) and the quality when it is `good`. A reading then
    /// costs its name and value, about 20 bytes.
    public static func telemetry(
        _ readings: [Reading], identity: GatewayIdentity, device: String, compact: Bool = false
    ) -> [UInt8]? {
        guard let first = readings.first else { return nil }
        let baseTime = first.acquiredAt
        var records: [SenMLRecord] = []
        records.reserveCapacity(readings.count)
        for (i, r) in readings.enumerated() {
            var rec = SenMLRecord(n: r.point, q: compact && r.quality == .good ? nil : r.quality.rawValue)
            if i == 0 {
                if !compact { rec.bn = baseName(identity: identity, device: device) }
                rec.bt = Double(baseTime) / 1000
            }
            if !compact, !r.unit.isEmpty { rec.u = r.unit }
            switch r.value {
            case .number(let v)?: rec.v = v.isFinite ? .double(v) : nil
            case .integer(let i)?: rec.v = SenMLNumber(exactly: i)
            case .text(let s)?: rec.vs = s
            case .flag(let b)?: rec.vb = b
            case nil: break
            }
            records.append(rec)
        }
        if readings.contains(where: { $0.acquiredAt != baseTime }) {
            return encode(records.enumerated().map { TimedRecord(record: $0.element, t: Double(readings[$0.offset].acquiredAt - baseTime) / 1000) })
        }
        return encode(records)
    }

    struct TimedRecord: Encodable {
        var record: SenMLRecord
        var t: Double

        func encode(to encoder: Encoder) throws {
            try record.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            if t != 0 { try c.encode(t, forKey: .t) }
        }

        enum Key: String, CodingKey { case t }
    }
}

/// Retained device availability: `online` after a good poll, `offline` when the device stopped answering.
public struct AvailabilityPayload: Encodable, Sendable {
    public var state: String
    public var reason: String?
    public var ts: Int64

    public init(online: Bool, reason: String?, at time: UnixMillis) {
        state = online ? "online" : "offline"
        self.reason = reason
        ts = time
    }
}

/// Retained gateway status; the `offline` form is the MQTT Will. The topic names the site and gateway.
public struct GatewayStatusPayload: Encodable, Sendable {
    public var state: String
    public var version: String
    /// When the gateway connected (online), or the connect the Will belongs to / the clean stop (offline).
    public var ts: Int64
    public var reason: String?

    public init(online: Bool, version: String, at time: UnixMillis, reason: String? = nil) {
        state = online ? "online" : "offline"
        self.version = version
        ts = time
        self.reason = reason
    }
}
