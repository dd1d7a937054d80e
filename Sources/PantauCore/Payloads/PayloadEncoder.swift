import FoundationEssentials

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
    ///
    /// Written straight into one byte buffer, keys in sorted order, numbers and strings exactly as `JSONEncoder`
    /// with `[.sortedKeys, .withoutEscapingSlashes]` writes them (the tests compare the two byte for byte): this
    /// runs for every poll, and the `Encodable` route cost about a third of the gateway's instructions.
    public static func telemetry(
        _ readings: [Reading], identity: GatewayIdentity, device: String, compact: Bool = false
    ) -> [UInt8]? {
        guard let first = readings.first else { return nil }
        let baseTime = first.acquiredAt
        let timed = readings.contains { $0.acquiredAt != baseTime }
        var out = JSONBytes(capacity: 64 + readings.count * (compact ? 24 : 48))
        out.byte(UInt8(ascii: "["))
        for (i, r) in readings.enumerated() {
            if i > 0 { out.byte(UInt8(ascii: ",")) }
            // Keys in sorted order: bn, bt, n, q, t, u, v, vb, vs.
            out.byte(UInt8(ascii: "{"))
            if i == 0 {
                if !compact {
                    out.key("bn", first: true)
                    out.string(baseName(identity: identity, device: device))
                }
                out.key("bt", first: compact)
                out.number(Double(baseTime) / 1000)
            }
            out.key("n", first: i > 0)
            out.string(r.point)
            if !compact || r.quality != .good {
                out.key("q")
                out.string(r.quality.rawValue)
            }
            if timed {
                let t = Double(r.acquiredAt - baseTime) / 1000
                if t != 0 {
                    out.key("t")
                    out.number(t)
                }
            }
            if !compact, !r.unit.isEmpty {
                out.key("u")
                out.string(r.unit)
            }
            switch r.value {
            case .number(let v)? where v.isFinite:
                out.key("v")
                out.number(v)
            case .integer(let i)?:
                out.key("v")
                out.number(SenMLNumber(exactly: i))
            case .text(let s)?:
                out.key("vs")
                out.string(s)
            case .flag(let b)?:
                out.key("vb")
                out.literal(b ? "true" : "false")
            case .number?, nil:
                break
            }
            out.byte(UInt8(ascii: "}"))
        }
        out.byte(UInt8(ascii: "]"))
        return out.bytes
    }
}
