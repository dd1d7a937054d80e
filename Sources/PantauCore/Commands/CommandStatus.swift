/// The outcome of a remote command: each refusal has its own code, so an operator (and a test) can tell why.
/// Codes follow HTTP where one fits; the names are what replies and audit events carry in `status`.
public enum CommandStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case ok
    /// `commands.enabled` is false: nothing is carried out.
    case disabled
    case unknownVerb = "unknown_verb"
    /// The body is not the JSON object the verb needs (too large, malformed, a missing or invalid field).
    case badRequest = "bad_request"
    /// A verb that changes something arrived without `ts`, `nonce` and `sig`.
    case unsigned
    case badSignature = "bad_signature"
    /// `ts` is outside the window around the gateway's clock.
    case expired
    /// The nonce was seen before within the window.
    case replayed
    /// The profile does not mark the point writable.
    case notWritable = "not_writable"
    /// The value is outside the point's declared range or not of its type.
    case outOfRange = "out_of_range"
    /// The device's configuration does not say `writes: allow`.
    case writesNotAllowed = "writes_not_allowed"
    case deviceUnknown = "device_unknown"
    /// The device did not answer, answered with an exception, or read back another value.
    case deviceError = "device_error"

    /// The numeric code beside the name.
    public var code: Int {
        switch self {
        case .ok: 200
        case .badRequest: 400
        case .unsigned: 401
        case .badSignature: 403
        case .deviceUnknown: 404
        case .notWritable: 405
        case .expired: 408
        case .replayed: 409
        case .outOfRange: 422
        case .writesNotAllowed: 423
        case .unknownVerb: 501
        case .deviceError: 502
        case .disabled: 503
        }
    }
}

/// A command refused before it ran (or a failure while running), with a message a technician can act on.
public struct CommandRefusal: Error, Sendable, Hashable {
    public var status: CommandStatus
    public var message: String

    public init(_ status: CommandStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}
