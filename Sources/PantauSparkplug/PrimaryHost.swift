import FoundationEssentials

/// A primary host application's STATE message (Sparkplug 3.0: `spBv1.0/STATE/<host_id>`, retained, QoS 1), JSON
/// `{"online": <bool>, "timestamp": <ms since the epoch>}`.
public struct HostState: Sendable, Hashable, Decodable {
    public var online: Bool
    public var timestamp: UInt64

    /// A valid STATE body is about 40 bytes; anything beyond this is not one.
    public static let maximumBytes = 1024

    public enum Rejection: Error, Equatable, CustomStringConvertible {
        case tooLarge(Int)
        case malformed(String)

        public var description: String {
            switch self {
            case .tooLarge(let n): "STATE payload of \(n) bytes, more than \(HostState.maximumBytes)"
            case .malformed(let why): "STATE payload is not {\"online\": bool, \"timestamp\": ms}: \(why)"
            }
        }
    }

    /// Reads a STATE body as hostile input: bounded, a JSON object with a boolean `online` and a non-negative
    /// integer `timestamp` (other keys are ignored).
    public static func parse(_ payload: [UInt8]) -> Result<HostState, Rejection> {
        guard payload.count <= maximumBytes else { return .failure(.tooLarge(payload.count)) }
        do {
            return .success(try JSONDecoder().decode(HostState.self, from: Data(payload)))
        } catch let DecodingError.keyNotFound(key, _) {
            return .failure(.malformed("no '\(key.stringValue)'"))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.last?.stringValue ?? "the payload"
            return .failure(.malformed("'\(key)' has the wrong type"))
        } catch let DecodingError.dataCorrupted(context) {
            let key = context.codingPath.last?.stringValue
            return .failure(.malformed(key.map { "'\($0)' is out of range" } ?? "not JSON"))
        } catch {
            return .failure(.malformed("not JSON"))
        }
    }
}

/// The edge node's session as its primary host sees it (Sparkplug 3.0, sections "Edge Node Session Establishment"
/// and "Edge Node Session Termination"), as a value whose transitions return what the publisher must do:
///
/// - Without a primary host, the births follow every CONNACK.
/// - With one, the node subscribes to its STATE topic and births only once a STATE with `online: true` arrives on
///   this connection; until then it publishes no data (the data waits in the journal).
/// - A STATE whose timestamp is older than the last one accepted on this connection is ignored.
/// - An offline STATE after the births ends the session: NDEATH, DISCONNECT, and a new connection at once (with
///   a new Will, so a new bdSeq), which waits for the host again. Before the births there is nothing to end.
/// - A rebirth request is honoured only when the births are allowed.
public struct PrimaryHostSession: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Publish NBIRTH and the DBIRTHs, then the data that waited.
        case births
        /// Publish the NDEATH, disconnect, and connect again at once.
        case endSession
    }

    /// `sparkplug.primary_host_id`; nil: no primary host to wait for.
    public let hostId: String?
    public private(set) var connected = false
    /// The births of this connection were published: data may flow.
    public private(set) var born = false
    /// The last STATE accepted on this connection.
    public private(set) var host: HostState?

    public init(hostId: String?) {
        self.hostId = hostId
    }

    public var stateTopic: String? { hostId.map(SparkplugTopics.state(hostId:)) }

    /// Data may be published: the births of this connection are out.
    public var holdsData: Bool { !born }

    /// A new connection attempt (its Will is registered): nothing is known about the host on it yet.
    public mutating func connecting() {
        connected = false
        born = false
        host = nil
    }

    /// CONNACK: births at once without a primary host; with one, wait for its STATE.
    public mutating func connack() -> [Action] {
        connected = true
        return hostAllowsBirths ? birth() : []
    }

    /// A STATE message of the primary host (already parsed). Returns nil when it is ignored as older than the
    /// last accepted one.
    public mutating func state(_ state: HostState) -> [Action]? {
        if let last = host, state.timestamp < last.timestamp { return nil }
        host = state
        guard connected else { return [] }
        if state.online { return born ? [] : birth() }
        guard born else { return [] }
        born = false
        return [.endSession]
    }

    /// `Node Control/Rebirth`: new births when births are allowed, else nothing (they come when the host does).
    public mutating func rebirth() -> [Action] {
        guard connected, hostAllowsBirths else { return [] }
        return birth()
    }

    /// The connection ended.
    public mutating func disconnected() {
        connected = false
        born = false
    }

    /// No primary host to wait for, or its last STATE on this connection said online.
    private var hostAllowsBirths: Bool { hostId == nil || host?.online == true }

    private mutating func birth() -> [Action] {
        born = true
        return [.births]
    }
}
