import FoundationEssentials

/// One command as received: the verb from the topic and the arguments from a JSON body, checked as hostile input
/// (size bounded before parsing, unknown fields refused, every string within a small character set and length).
///
/// Body fields (all optional at this level; the verb decides which it needs):
/// `device`, `point`, `value` (a decimal string, or `true`/`false`), `interval_ms`, `duration_s`,
/// and the signature fields `ts` (Unix milliseconds), `nonce` and `sig` (hex HMAC-SHA256).
public struct CommandRequest: Sendable, Hashable {
    public var verb: CommandVerb
    public var device: String?
    public var point: String?
    /// Exactly as sent, so what was signed is what is written.
    public var value: String?
    public var intervalMs: Int64?
    public var durationSeconds: Int64?
    public var timestamp: Int64?
    public var nonce: String?
    public var signature: String?

    public init(
        verb: CommandVerb, device: String? = nil, point: String? = nil, value: String? = nil,
        intervalMs: Int64? = nil, durationSeconds: Int64? = nil, timestamp: Int64? = nil, nonce: String? = nil,
        signature: String? = nil
    ) {
        self.verb = verb
        self.device = device
        self.point = point
        self.value = value
        self.intervalMs = intervalMs
        self.durationSeconds = durationSeconds
        self.timestamp = timestamp
        self.nonce = nonce
        self.signature = signature
    }

    /// The largest body accepted, in bytes.
    public static let maxBodyBytes = 2048
    /// Poll-interval overrides: 100 ms to one day, for at most one day.
    public static let intervalRange: ClosedRange<Int64> = 100...86_400_000
    public static let durationRange: ClosedRange<Int64> = 1...86_400

    /// True when any of the signature fields is present.
    public var isSigned: Bool { timestamp != nil || nonce != nil || signature != nil }

    /// The JSON body a client sends: the fields present, with the signature fields when signed (what `parse` reads).
    public var body: [UInt8] { PayloadEncoder.encode(WireBody(self)) }

    /// The last level of a command topic `<base>/cmd/<verb>` as sent (also an unknown verb), or nil for a topic
    /// outside `base`.
    public static func askedVerb(topic: String, base: String) -> String? {
        let prefix = base + "/cmd/"
        guard topic.hasPrefix(prefix) else { return nil }
        return String(topic.dropFirst(prefix.count))
    }

    /// The verb of a command topic `<base>/cmd/<verb>`, or the refusal: a topic outside `base` is not ours.
    public static func verb(topic: String, base: String) -> Result<CommandVerb, CommandRefusal> {
        guard let name = askedVerb(topic: topic, base: base) else {
            return .failure(CommandRefusal(.badRequest, "not a command topic of this gateway"))
        }
        guard let verb = CommandVerb(rawValue: name) else {
            let known = CommandVerb.allCases.map(\.rawValue).joined(separator: ", ")
            return .failure(CommandRefusal(.unknownVerb, "unknown verb '\(name.prefix(64))' (known: \(known))"))
        }
        return .success(verb)
    }

    /// Parses and checks a body for `verb`. An empty body is an empty object.
    public static func parse(verb: CommandVerb, body: [UInt8]) -> Result<CommandRequest, CommandRefusal> {
        guard body.count <= maxBodyBytes else {
            return .failure(CommandRefusal(.badRequest, "body is \(body.count) bytes, more than \(maxBodyBytes)"))
        }
        let wire: WireBody
        do {
            wire = body.isEmpty ? WireBody() : try JSONDecoder().decode(WireBody.self, from: Data(body))
        } catch let refusal as CommandRefusal {
            return .failure(refusal)
        } catch {
            return .failure(
                CommandRefusal(.badRequest, "body is not a JSON object of the command's fields: \(brief(error))"))
        }
        var request = CommandRequest(
            verb: verb, device: wire.device, point: wire.point, value: wire.value, intervalMs: wire.interval_ms,
            durationSeconds: wire.duration_s, timestamp: wire.ts, nonce: wire.nonce, signature: wire.sig)
        if let problem = request.problem() { return .failure(CommandRefusal(.badRequest, problem)) }
        request.signature = request.signature?.lowercased()
        return .success(request)
    }

    /// The same checks as `parse` for a request built from another wire form (Sparkplug NCMD/DCMD metrics): every
    /// field within its character set and length, the verb's fields present and no others; the signature lowercased.
    public func checked() -> Result<CommandRequest, CommandRefusal> {
        if let problem = problem() { return .failure(CommandRefusal(.badRequest, problem)) }
        var request = self
        request.signature = request.signature?.lowercased()
        return .success(request)
    }

    /// What is wrong with the fields for this verb, or nil.
    func problem() -> String? {
        for (field, text, limit) in [("device", device, 64), ("point", point, 64)] {
            if let text, !Self.isName(text, limit: limit) {
                return "'\(field)' must be 1-\(limit) letters, digits, '-', '_' or '.'"
            }
        }
        if let value, !Self.isValueText(value) {
            return "'value' must be a decimal number or true/false, as a string of at most 40 characters"
        }
        if let nonce, !(8...64).contains(nonce.utf8.count) || !nonce.utf8.allSatisfy(Self.isNonceByte) {
            return "'nonce' must be 8-64 letters, digits, '-' or '_'"
        }
        if let signature, signature.utf8.count != 64 || !signature.utf8.allSatisfy(Self.isHexByte) {
            return "'sig' must be 64 hex digits (HMAC-SHA256)"
        }
        if let ts = timestamp, ts < 0 || ts > 32_503_680_000_000 { return "'ts' must be Unix milliseconds" }
        if verb.needsDevice && device == nil { return "'\(verb.rawValue)' needs 'device'" }
        switch verb {
        case .write:
            if point == nil || value == nil { return "'write' needs 'point' and 'value'" }
        case .pollInterval:
            guard let intervalMs, let durationSeconds else {
                return "'poll-interval' needs 'interval_ms' and 'duration_s'"
            }
            if !Self.intervalRange.contains(intervalMs) { return "'interval_ms' must be within \(Self.intervalRange)" }
            if !Self.durationRange.contains(durationSeconds) {
                return "'duration_s' must be within \(Self.durationRange)"
            }
        default: break
        }
        let extra = [
            verb == .write ? nil : point.map { _ in "point" }, verb == .write ? nil : value.map { _ in "value" },
            verb == .pollInterval ? nil : intervalMs.map { _ in "interval_ms" },
            verb == .pollInterval ? nil : durationSeconds.map { _ in "duration_s" },
            verb.needsDevice ? nil : device.map { _ in "device" },
        ].compactMap { $0 }
        if let field = extra.first { return "'\(verb.rawValue)' takes no '\(field)'" }
        return nil
    }

    /// The arguments as signed: present fields as `key=value`, sorted by key, joined by `&`. The character sets
    /// above keep `=`, `&` and newlines out of every value, so the form is unambiguous.
    public var canonicalArguments: String {
        let pairs: [(String, String?)] = [
            ("device", device), ("duration_s", durationSeconds.map(String.init)),
            ("interval_ms", intervalMs.map(String.init)), ("point", point), ("value", value),
        ]
        return pairs.compactMap { key, value in value.map { "\(key)=\($0)" } }.joined(separator: "&")
    }

    static func isName(_ text: String, limit: Int) -> Bool {
        !text.isEmpty && text.utf8.count <= limit
            && text.utf8.allSatisfy { isNonceByte($0) || $0 == UInt8(ascii: ".") }
    }

    static func isValueText(_ text: String) -> Bool {
        if text == "true" || text == "false" { return true }
        guard !text.isEmpty, text.utf8.count <= 40 else { return false }
        return text.utf8.allSatisfy { byte in
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "e")
                || byte == UInt8(ascii: "E")
        } && Double(text) != nil
    }

    static func isNonceByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "_")
    }

    static func isHexByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    /// A decoding error in one line, without echoing the body back.
    private static func brief(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "malformed JSON" }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "malformed JSON" : "'\(path)' has the wrong type"
        case .keyNotFound(let key, _): return "'\(key.stringValue)' is missing"
        @unknown default: return "malformed JSON"
        }
    }
}

/// The body as JSON: only these fields, each of its own JSON type.
private struct WireBody: Codable {
    var device: String?
    var point: String?
    var value: String?
    var interval_ms: Int64?
    var duration_s: Int64?
    var ts: Int64?
    var nonce: String?
    var sig: String?

    init() {}

    init(_ r: CommandRequest) {
        device = r.device
        point = r.point
        value = r.value
        interval_ms = r.intervalMs
        duration_s = r.durationSeconds
        ts = r.timestamp
        nonce = r.nonce
        sig = r.signature
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private static let fields: Set<String> = [
        "device", "point", "value", "interval_ms", "duration_s", "ts", "nonce", "sig",
    ]

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = c.allKeys.first(where: { !Self.fields.contains($0.stringValue) }) {
            throw CommandRefusal(.badRequest, "unknown field '\(unknown.stringValue.prefix(40))'")
        }
        func key(_ name: String) -> AnyKey { AnyKey(stringValue: name) }
        device = try c.decodeIfPresent(String.self, forKey: key("device"))
        point = try c.decodeIfPresent(String.self, forKey: key("point"))
        value = try c.decodeIfPresent(String.self, forKey: key("value"))
        interval_ms = try c.decodeIfPresent(Int64.self, forKey: key("interval_ms"))
        duration_s = try c.decodeIfPresent(Int64.self, forKey: key("duration_s"))
        ts = try c.decodeIfPresent(Int64.self, forKey: key("ts"))
        nonce = try c.decodeIfPresent(String.self, forKey: key("nonce"))
        sig = try c.decodeIfPresent(String.self, forKey: key("sig"))
    }
}
