import FoundationEssentials

/// A point's value as JSON: in a command's result (the readings of `read`, the value of `write`) and in the JSON of
/// `pantau read`.
public enum CommandValue: Encodable, Sendable, Hashable {
    case string(String)
    case number(Double)
    /// Written with all its digits (a Double would round it beyond 2^53).
    case integer(Int128)
    case bool(Bool)
    case null

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let d): if d.isFinite { try c.encode(d) } else { try c.encodeNil() }
        case .integer(let i): try c.encode(SenMLNumber(exactly: i))
        case .bool(let b): try c.encode(b)
        case .null: try c.encodeNil()
        }
    }

    /// A reading's value as JSON.
    public init(_ value: PointValue?) {
        switch value {
        case .number(let d)?: self = .number(d)
        case .integer(let i)?: self = .integer(i)
        case .text(let s)?: self = .string(s)
        case .flag(let b)?: self = .bool(b)
        case nil: self = .null
        }
    }
}

/// The reply on the request's Response Topic, with its Correlation Data (the gateway adds the verb's `result`).
public struct CommandReply: Encodable, Sendable, Hashable {
    public var status: CommandStatus
    public var code: Int
    public var message: String
    public var verb: String?

    public init(status: CommandStatus, message: String, verb: CommandVerb?) {
        self.status = status
        code = status.code
        self.message = message
        self.verb = verb?.rawValue
    }
}

/// One audit event per command, accepted or refused, on `<base>/audit` (see docs/schemas/audit.schema.json).
public struct CommandAuditEvent: Encodable, Sendable, Hashable {
    public var at: Int64
    /// The verb as asked (also an unknown one, cut to 64 characters).
    public var verb: String
    public var device: String?
    public var point: String?
    public var value: String?
    public var nonce: String?
    public var signed: Bool
    public var status: CommandStatus
    public var code: Int
    public var message: String

    public init(at: Int64, verb: String, request: CommandRequest?, status: CommandStatus, message: String) {
        self.at = at
        self.verb = String(verb.prefix(64))
        device = request?.device
        point = request?.point
        value = request?.value
        nonce = request?.nonce
        signed = request?.isSigned ?? false
        self.status = status
        code = status.code
        self.message = message
    }
}
