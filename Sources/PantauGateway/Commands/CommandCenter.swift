import FoundationEssentials
import Logging
import PantauCore
import PantauMQTT
import PantauModbus
import PantauSparkplug
import Synchronization

/// Carries out remote commands (issue 16): parses and authorises each request on the publishing thread (cheap,
/// never blocking), hands bus work to the bus's own thread, and answers on the request's Response Topic with its
/// Correlation Data. Every command, accepted or refused, is logged and journaled as an audit event.
final class CommandCenter: Sendable {
    struct Wiring: Sendable {
        var topics: TopicScheme
        var devices: [DeviceConfig]

        init(_ config: GatewayConfig) {
            topics = TopicScheme(prefix: config.mqtt.topicPrefix, identity: config.identity)
            devices = config.devices
        }
    }

    /// What every signature names: `<site>/<gateway>`.
    static func target(_ config: GatewayConfig) -> String { "\(config.identity.site)/\(config.identity.id)" }

    private let wiring: Mutex<Wiring>
    private let authorizer: Mutex<CommandAuthorizer>
    private let sink: MessageSink
    private let clock: GatewayClock
    private let logger: Logger
    private let pollers: PollerDirectory
    private let hooks = Mutex<Hooks>(Hooks())
    /// With `mqtt.format: sparkplug`: NCMD/DCMD commands come from it, and a write's read-back goes out as DDATA.
    private let sparkplug = Mutex<SparkplugEdge?>(nil)

    /// What the center asks of the gateway, set once the gateway is built.
    struct Hooks: Sendable {
        var health: @Sendable () -> GatewayHealth? = { nil }
        var publisher: @Sendable () -> Publisher? = { nil }
    }

    init(config: GatewayConfig, sink: MessageSink, clock: GatewayClock, logger: Logger, pollers: PollerDirectory) {
        wiring = Mutex(Wiring(config))
        authorizer = Mutex(CommandAuthorizer(config: config.commands, target: Self.target(config), mac: HMACSHA256()))
        self.sink = sink
        self.clock = clock
        var logger = logger
        logger[metadataKey: "component"] = "commands"
        self.logger = logger
        self.pollers = pollers
    }

    func attach(_ hooks: Hooks) { self.hooks.withLock { $0 = hooks } }

    /// Takes the Sparkplug edge node's NCMD/DCMD commands (before the publisher starts: DCMD is subscribed then).
    func attach(sparkplug edge: SparkplugEdge) {
        sparkplug.withLock { $0 = edge }
        edge.onCommand { [weak self] command, retained in self?.handle(command, retained: retained) }
    }

    private func health() -> GatewayHealth? { hooks.withLock { $0.health }() }
    private func publisher() -> Publisher? { hooks.withLock { $0.publisher }() }

    /// The channel a publisher subscribes for this gateway's commands.
    func channel(base: String) -> CommandChannel {
        CommandChannel(base: base) { [self] message in handle(message) }
    }

    /// A reload: new devices (their writes and points), a new command configuration; nonces stay remembered
    /// while the key and target stay.
    func reconfigure(_ config: GatewayConfig) {
        let target = Self.target(config)
        wiring.withLock { $0 = Wiring(config) }
        authorizer.withLock { a in
            if a.config != config.commands || a.target != target {
                a = CommandAuthorizer(config: config.commands, target: target, mac: HMACSHA256())
            }
        }
    }

    func handle(_ message: MQTTMessage) {
        let now = clock.now()
        let wiring = wiring.withLock { $0 }
        let asked = CommandRequest.askedVerb(topic: message.topic, base: wiring.topics.base) ?? ""
        let respond = Responder(center: self, message: message, asked: asked, at: now)
        let verb: CommandVerb
        switch CommandRequest.verb(topic: message.topic, base: wiring.topics.base) {
        case .success(let v): verb = v
        case .failure(let refusal): return respond.finish(nil, refusal.status, refusal.message)
        }
        // A retained command would run again on every reconnect of every gateway it matches.
        if message.retain {
            return respond.finish(nil, .badRequest, "retained commands are ignored", verb: verb)
        }
        let request: CommandRequest
        switch CommandRequest.parse(verb: verb, body: message.payload) {
        case .success(let r): request = r
        case .failure(let refusal): return respond.finish(nil, refusal.status, refusal.message, verb: verb)
        }
        if let refusal = authorizer.withLock({ $0.authorize(request, now: now) }) {
            return respond.finish(request, refusal.status, refusal.message)
        }
        run(request, wiring: wiring, respond: respond)
    }

    /// A Sparkplug NCMD/DCMD command, mapped by `SparkplugCommandParser`: the same checks, authoriser, verbs and
    /// audit events as an MQTT command; no reply (Sparkplug has no response topic): a write's read-back goes out as
    /// DDATA, a read's readings as the poll's DDATA.
    func handle(_ command: SparkplugCommand, retained: Bool) {
        let now = clock.now()
        let wiring = wiring.withLock { $0 }
        let respond = Responder(center: self, message: nil, asked: command.asked, at: now)
        if retained {
            return respond.finish(command.request, .badRequest, "retained commands are ignored")
        }
        if let refusal = command.refusal {
            return respond.finish(command.request, refusal.status, refusal.message)
        }
        guard let request = command.request else {
            return respond.finish(nil, .badRequest, "no command in the Sparkplug message")
        }
        if let refusal = authorizer.withLock({ $0.authorize(request, now: now) }) {
            return respond.finish(request, refusal.status, refusal.message)
        }
        run(request, wiring: wiring, respond: respond)
    }

    private func run(_ request: CommandRequest, wiring: Wiring, respond: Responder) {
        switch request.verb {
        case .health:
            respond.finish(request, .ok, "health", result: health())
        case .journal:
            respond.finish(request, .ok, "journal", result: health()?.journal)
        case .republish:
            publisher()?.requestRepublish()
            respond.finish(request, .ok, "retained state queued for republishing")
        case .read:
            guard let device = request.device, let poller = pollers.poller(for: device) else {
                return respond.finish(request, .deviceUnknown, "no device '\(request.device ?? "")' on this gateway")
            }
            poller.submit(
                .readNow(device: device) { poll in
                    guard let poll else {
                        return respond.finish(request, .deviceUnknown, "no device '\(device)' on this gateway")
                    }
                    let result = ReadResult(poll)
                    if let error = poll.error {
                        return respond.finish(request, .deviceError, "read failed: \(error)", result: result)
                    }
                    respond.finish(request, .ok, "read \(poll.readings.count) points", result: result)
                })
        case .pollInterval:
            guard let device = request.device, let poller = pollers.poller(for: device),
                let interval = request.intervalMs, let seconds = request.durationSeconds
            else {
                return respond.finish(request, .deviceUnknown, "no device '\(request.device ?? "")' on this gateway")
            }
            let until = respond.at + seconds * 1000
            poller.setTemporaryPollInterval(device: device, Interval(milliseconds: interval), until: until)
            respond.finish(
                request, .ok, "polling every \(interval) ms until \(until)",
                result: IntervalResult(device: device, interval_ms: interval, until: until))
        case .write:
            write(request, wiring: wiring, respond: respond)
        }
    }

    private func write(_ request: CommandRequest, wiring: Wiring, respond: Responder) {
        let plan: WritePlan
        switch WritePlan.make(
            device: request.device ?? "", point: request.point ?? "", value: request.value ?? "",
            devices: wiring.devices)
        {
        case .success(let p): plan = p
        case .failure(let refusal): return respond.finish(request, refusal.status, refusal.message)
        }
        guard let poller = pollers.poller(for: plan.device) else {
            return respond.finish(request, .deviceUnknown, "device '\(plan.device)' is not polled by any bus")
        }
        poller.submit(
            .write(
                device: plan.device, table: plan.point.table, address: plan.point.address, words: plan.words
            ) { [self] outcome in
                if case .success(let back) = outcome { publishReadBack(plan, back, at: clock.now()) }
                switch outcome {
                case .success(let back) where back == plan.words:
                    respond.finish(
                        request, .ok, "wrote \(request.value ?? "") to \(plan.point.name), read back the same",
                        result: WriteResult(plan: plan, readBack: back))
                case .success(let back):
                    respond.finish(
                        request, .deviceError, "wrote \(plan.words) but read back \(back)",
                        result: WriteResult(plan: plan, readBack: back))
                case .failure(let error):
                    respond.finish(request, .deviceError, "write failed: \(error)")
                }
            })
    }

    /// Sparkplug: the value read back after a write, as DDATA of its device (when the point is one of its metrics).
    private func publishReadBack(_ plan: WritePlan, _ words: [UInt16], at now: UnixMillis) {
        guard let edge = sparkplug.withLock({ $0 }),
            let device = wiring.withLock({ $0.devices.first(where: { $0.name == plan.device }) })
        else { return }
        var image = RegisterImage()
        image.store(words, table: plan.point.table, at: plan.point.address)
        var profile = device.profile
        profile.points = [plan.point]
        let readings = RegisterDecoder.decode(profile: profile, image: image, device: plan.device, acquiredAt: now)
        // On an unsynchronised clock the read-back is marked like any poll's DDATA (`tq`), with its boottime for the
        // edge to correct it once the clock synchronises (issue 14): never published as if its time were known.
        let sample = clock.clockSample()
        let time: TimeQuality? = sample.synced ? nil : .unsynced
        let message = edge.dataMessage(
            readings, device: plan.device, acquiredAt: now, time: time,
            boottimes: time == nil ? [] : readings.map { _ in sample.boottimeMs }, bootId: sample.bootId)
        if let message { sink.append([message]) }
    }

    /// The reply, the audit event and the log line of one command.
    fileprivate func conclude(
        _ message: MQTTMessage?, asked: String, at: UnixMillis, request: CommandRequest?, status: CommandStatus,
        text: String, verb: CommandVerb?, result: (any Encodable)?
    ) {
        let topics = wiring.withLock { $0.topics }
        let event = CommandAuditEvent(at: at, verb: asked, request: request, status: status, message: text)
        sink.append([
            OutboundMessage(
                kind: .status, topic: topics.audit, body: PayloadEncoder.encode(event), device: request?.device,
                acquiredAt: at)
        ])
        var metadata: Logger.Metadata = [
            "verb": "\(event.verb)", "status": "\(status.rawValue)", "message": "\(text)",
        ]
        if let device = request?.device { metadata["device"] = "\(device)" }
        if let point = request?.point { metadata["point"] = "\(point)" }
        if status == .ok {
            logger.notice("command carried out", metadata: metadata)
        } else {
            logger.warning("command refused or failed", metadata: metadata)
        }
        guard let message, let responseTopic = message.responseTopic, !responseTopic.isEmpty else { return }
        let reply = CommandReply(status: status, message: text, verb: verb ?? request?.verb)
        publisher()?.reply(
            topic: responseTopic, body: PayloadEncoder.encode(ReplyBody(reply: reply, result: result)),
            correlationData: message.correlationData)
    }
}

/// The reply with the verb's result beside its fields, as `result`.
private struct ReplyBody: Encodable {
    var reply: CommandReply
    var result: (any Encodable)?

    private enum Key: String, CodingKey { case result }

    func encode(to encoder: any Encoder) throws {
        try reply.encode(to: encoder)
        guard let result else { return }
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(result, forKey: .result)
    }
}

/// Answers one command once, from whichever thread finishes it.
private struct Responder: Sendable {
    let center: CommandCenter
    /// nil for a Sparkplug command: no reply.
    let message: MQTTMessage?
    let asked: String
    let at: UnixMillis

    func finish(
        _ request: CommandRequest?, _ status: CommandStatus, _ text: String, verb: CommandVerb? = nil,
        result: (any Encodable)? = nil
    ) {
        center.conclude(
            message, asked: asked, at: at, request: request, status: status, text: text, verb: verb, result: result)
    }
}

private struct ReadResult: Encodable {
    struct Point: Encodable {
        var point: String
        var value: CommandValue
        var unit: String
        var quality: String
    }

    var device: String
    var ts: Int64
    var error: String?
    var readings: [Point]

    init(_ poll: DevicePoll) {
        device = poll.device
        ts = poll.acquiredAt
        error = poll.error.map { "\($0)" }
        readings = poll.readings.map {
            Point(point: $0.point, value: CommandValue($0.value), unit: $0.unit, quality: $0.quality.rawValue)
        }
    }
}

private struct IntervalResult: Encodable {
    var device: String
    var interval_ms: Int64
    var until: Int64
}

private struct WriteResult: Encodable {
    var device: String
    var point: String
    var value: CommandValue
    var written: [UInt16]
    var read_back: [UInt16]

    init(plan: WritePlan, readBack: [UInt16]) {
        device = plan.device
        point = plan.point.name
        value = CommandValue(plan.value)
        written = plan.words
        read_back = readBack
    }
}

extension CommandCenter {
    /// The command channel of a configuration with a `commands:` section, else nil (no subscription).
    func channel(for config: GatewayConfig) -> CommandChannel? {
        guard config.commands.listening else { return nil }
        return channel(base: Wiring(config).topics.base)
    }
}
