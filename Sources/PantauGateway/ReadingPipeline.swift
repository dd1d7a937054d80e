import Logging
import PantauCore
import Synchronization

/// Turns what the bus threads acquire into journal messages: telemetry, availability, and (from the readings) the
/// local intelligence: window aggregates, indices, flood alerts and rain. The journal is its only output.
public final class ReadingPipeline: Sendable {
    private let sink: MessageSink
    private let clock: GatewayClock
    private let logger: Logger
    private let state: Mutex<State>
    /// Called when an alert level asks for a different poll interval (flood alerts poll faster as water rises).
    private let onPollInterval: @Sendable (_ device: String, _ interval: Interval) -> Void

    struct State {
        var config: GatewayConfig
        var topics: TopicScheme
        var devices: [String: DeviceConfig]
    }

    public init(
        config: GatewayConfig, sink: MessageSink, clock: GatewayClock, logger: Logger,
        onPollInterval: @escaping @Sendable (_ device: String, _ interval: Interval) -> Void
    ) {
        self.sink = sink
        self.clock = clock
        self.logger = logger
        self.onPollInterval = onPollInterval
        state = Mutex(Self.makeState(config))
    }

    static func makeState(_ config: GatewayConfig) -> State {
        State(
            config: config, topics: TopicScheme(prefix: config.mqtt.topicPrefix, identity: config.identity),
            devices: Dictionary(uniqueKeysWithValues: config.devices.map { ($0.name, $0) }))
    }

    /// Applies a reloaded configuration; per-device state of devices that remain is kept.
    public func reconfigure(_ config: GatewayConfig) {
        state.withLock { $0 = Self.makeState(config) }
    }

    /// One poll of one device, from a bus thread.
    public func handle(_ poll: DevicePoll) {
        let messages: [OutboundMessage] = state.withLock { s in
            guard let device = s.devices[poll.device] else { return [] }
            var out: [OutboundMessage] = []
            let published = poll.readings.filter { r in device.profile.point(named: r.point)?.publish ?? true }
            if let body = PayloadEncoder.telemetry(published, identity: s.config.identity, device: device.name) {
                out.append(OutboundMessage(
                    kind: .telemetry, topic: s.topics.telemetry(device.name), body: body, device: device.name,
                    acquiredAt: poll.acquiredAt, contentType: "application/senml+json"))
            }
            return out
        }
        if !messages.isEmpty { sink.append(messages) }
    }

    /// A device came online or went offline: a retained availability message, journaled like everything else.
    public func availability(device: String, online: Bool, reason: String) {
        let now = clock.now()
        let message: OutboundMessage? = state.withLock { s in
            guard s.devices[device] != nil else { return nil }
            let body = PayloadEncoder.encode(AvailabilityPayload(online: online, reason: online ? nil : reason, at: now))
            return OutboundMessage(
                kind: .status, topic: s.topics.availability(device), body: body, retain: true, device: device,
                acquiredAt: now)
        }
        if let message { sink.append([message]) }
        if online {
            logger.info("device online", metadata: ["device": "\(device)"])
        } else {
            logger.warning("device offline", metadata: ["device": "\(device)", "reason": "\(reason)"])
        }
    }
}
