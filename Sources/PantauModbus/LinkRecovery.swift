import PantauCore

/// What a bus does to its link after a transaction: the rules that keep a TCP connection from staying dead or
/// out of step, as a value type whose transitions return actions.
///
/// - An invalid or mismatched reply (bad data, bad CRC) means the byte stream can no longer be trusted: RTU lets
///   the line go quiet and flushes; TCP closes the connection and opens a new one.
/// - Timeouts: RTU flushes after each. TCP flushes after the first and reopens the connection after
///   `timeoutsBeforeReconnect` in a row (a peer that accepts and reads but never answers, or a half-open socket).
/// - Any answer, an exception reply included, resets the count.
struct LinkRecovery: Sendable, Equatable {
    enum Action: Sendable, Equatable { case none, flush, reconnect }

    /// Consecutive TCP timeouts after which the connection is reopened.
    static let timeoutsBeforeReconnect = 2

    let isTCP: Bool
    private(set) var consecutiveTimeouts = 0

    init(isTCP: Bool) { self.isTCP = isTCP }

    /// A transaction ended with `code` (nil: a good reply).
    mutating func record(_ code: ModbusError.Code?) -> Action {
        switch code {
        case .timeout?:
            consecutiveTimeouts += 1
            guard isTCP, consecutiveTimeouts >= Self.timeoutsBeforeReconnect else { return .flush }
            consecutiveTimeouts = 0
            return .reconnect
        case .badData?, .badCRC?:
            consecutiveTimeouts = 0
            return isTCP ? .reconnect : .flush
        case .connection?:
            consecutiveTimeouts = 0
            return .none
        default:
            consecutiveTimeouts = 0
            return .none
        }
    }

    /// The connection was opened again: nothing carries over.
    mutating func reset() { consecutiveTimeouts = 0 }
}
