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

/// JSON written into one growing byte buffer, with `JSONEncoder`'s formatting of numbers and strings
/// (`.withoutEscapingSlashes`): the hot path's encoder, no intermediate values per field.
struct JSONBytes {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    /// The literals here are ASCII, so their bytes are at `utf8Start` (no closure per call).
    mutating func literal(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// `"key":`, preceded by a comma unless it is the object's first key. Keys are plain ASCII.
    mutating func key(_ k: StaticString, first: Bool = false) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        literal(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// A finite double as `JSONEncoder` writes it: Swift's shortest round-trip `description`, without a `.0` suffix
    /// (cut from the bytes: removing characters from the String cost more than formatting it).
    mutating func number(_ d: Double) {
        var text = d.description
        text.withUTF8 { utf8 in
            let n = utf8.count
            let whole = n >= 2 && utf8[n - 2] == UInt8(ascii: ".") && utf8[n - 1] == UInt8(ascii: "0")
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[..<(whole ? n - 2 : n)]))
        }
    }

    mutating func number(_ n: SenMLNumber) {
        switch n {
        case .double(let d): number(d)
        case .signed(let i): ascii(i.description)
        case .unsigned(let u): ascii(u.description)
        }
    }

    private mutating func ascii(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\b \f \n \r \t` or `\u00xx`, the rest (slashes
    /// and non-ASCII included) as its UTF-8.
    mutating func string(_ s: String) {
        var s = s
        bytes.append(UInt8(ascii: "\""))
        s.withUTF8 { utf8 in
            var clean = utf8.startIndex
            for i in utf8.indices {
                let c = utf8[i]
                guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<i]))
                clean = i + 1
                bytes.append(UInt8(ascii: "\\"))
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(c)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [
                        UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 0xF)],
                    ])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean...]))
        }
        bytes.append(UInt8(ascii: "\""))
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
