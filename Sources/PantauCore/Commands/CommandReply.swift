import FoundationEssentials

/// A JSON value for a command's result (health, journal counters, readings).
public indirect enum CommandValue: Encodable, Sendable, Hashable {
    case string(String)
    case number(Double)
    case integer(Int64)
    case bool(Bool)
    case null
    case array([CommandValue])
    case object([String: CommandValue])

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let d): if d.isFinite { try c.encode(d) } else { try c.encodeNil() }
        case .integer(let i): try c.encode(i)
        case .bool(let b): try c.encode(b)
        case .null: try c.encodeNil()
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// A reading's value as JSON.
    public init(_ value: PointValue?) {
        switch value {
        case .number(let d)?: self = .number(d)
        case .integer(let i)?: self = Int64(exactly: i).map(CommandValue.integer) ?? .number(Double(i))
        case .text(let s)?: self = .string(s)
        case .flag(let b)?: self = .bool(b)
        case nil: self = .null
        }
    }
}

/// The reply on the request's Response Topic, with its Correlation Data.
public struct CommandReply: Encodable, Sendable, Hashable {
    public var status: CommandStatus
    public var code: Int
    public var message: String
    public var verb: String?
    public var result: CommandValue?

    public init(status: CommandStatus, message: String, verb: CommandVerb?, result: CommandValue? = nil) {
        self.status = status
        code = status.code
        self.message = message
        self.verb = verb?.rawValue
        self.result = result
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
