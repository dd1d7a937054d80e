import PantauCore
import PantauMQTT

/// The edge node as the publisher's session profile: NDEATH as the Will, NBIRTH/DBIRTH after every connect (once
/// the primary host is online, when one is configured), DDATA framed with seq (and `is_historical` for backlog) at
/// send time, NCMD `Node Control/Rebirth` answered by births, the primary host's STATE followed.
extension SparkplugEdge: SessionProfile {
    /// The content type of Sparkplug messages in the journal and on the wire (MQTT 5 property).
    public static let contentType = "application/vnd.sparkplug.b"

    public func frame(_ message: OutboundMessage, historical: Bool) -> [UInt8]? {
        guard message.topic.hasPrefix(SparkplugTopics.namespace + "/") else { return nil }
        return frame(message.body, topic: message.topic, historical: historical)
    }

    public func cleanStop() -> (topic: String, payload: [UInt8]) { currentDeath() }

    /// NCMD, DCMD when commands are wired (`onCommand`), and the primary host's STATE.
    public var subscriptions: [String] {
        [topics.ncmd] + (commandHandler.withLock { $0 } == nil ? [] : [topics.dcmdFilter])
            + (primaryHost.stateTopic.map { [$0] } ?? [])
    }

    /// Hands every NCMD/DCMD command (besides Rebirth) to the command core, with the message's retain flag. Set
    /// before the publisher starts (its subscriptions are made from it); without it DCMD is not subscribed and NCMD
    /// metrics other than Rebirth are ignored.
    public func onCommand(_ handler: @escaping @Sendable (SparkplugCommand, _ retained: Bool) -> Void) {
        commandHandler.withLock { $0 = handler }
    }

    /// The primary-host session as it stands.
    public var primaryHost: PrimaryHostSession { state.withLock { $0.session } }

    public func connected() -> SessionStep {
        let (actions, session) = state.withLock { s in (s.session.connack(), s.session) }
        if actions.isEmpty, let host = session.hostId, let topic = session.stateTopic {
            warn("births and data wait for the primary host '\(host)' to be online (\(topic))")
        }
        return Self.step(actions)
    }

    public var holdsData: Bool { state.withLock { $0.session.holdsData } }

    public func inbound(_ message: MQTTMessage) -> SessionStep {
        if let stateTopic = primaryHost.stateTopic, message.topic == stateTopic {
            switch HostState.parse(message.payload) {
            case .failure(let rejection):
                warn("primary host STATE ignored: \(rejection)")
                return .none
            case .success(let host):
                guard let actions = state.withLock({ $0.session.state(host) }) else {
                    warn("primary host STATE ignored: timestamp \(host.timestamp) is older than the last one")
                    return .none
                }
                return Self.step(actions)
            }
        }
        let handler = commandHandler.withLock { $0 }
        if let device = topics.dcmdDevice(message.topic) {
            let command = SparkplugCommandParser.parseDeviceCommand(
                message.payload, device: device, specs: catalog[device])
            handler?(command, message.retain)
            return .none
        }
        guard message.topic == topics.ncmd else { return .none }
        let (rebirth, refused) = SparkplugCommandParser.parseNodeCommand(message.payload)
        for command in refused { handler?(command, message.retain) }
        return rebirth ? Self.step(state.withLock { $0.session.rebirth() }) : .none
    }

    static func step(_ actions: [PrimaryHostSession.Action]) -> SessionStep {
        if actions.contains(.endSession) { return .restart }
        return actions.contains(.births) ? .births : .none
    }

    /// The queued DDATA message of one poll, or nil when none of its points is a metric.
    public func dataMessage(
        _ readings: [Reading], device: String, acquiredAt: UnixMillis, time: TimeQuality? = nil,
        boottimes: [Int64] = [], bootId: String? = nil
    ) -> OutboundMessage? {
        guard let body = data(readings, device: device, time: time, boottimes: boottimes, bootId: bootId) else {
            return nil
        }
        var message = OutboundMessage(
            kind: .telemetry, topic: topics.ddata(device), body: body, device: device, acquiredAt: acquiredAt,
            contentType: Self.contentType)
        // The journal keeps an unsynced DDATA beyond its age bound and counts it in the correction at the sync (it
        // does not change the protobuf body: `frame` corrects the metrics from their boottime).
        if time == .unsynced, let bootId, let boottime = boottimes.first {
            message.stamp = ClockStamp(bootId: bootId, boottimeMs: boottime, quality: .unsynced)
        }
        return message
    }
}
