import Logging
import PantauCore

#if canImport(Glibc)
    import Glibc
#endif

/// Drives libmosquitto for the publisher on its thread: feeds what happens (time, CONNACK, PUBACK, a lost link,
/// new records) to the `PublisherMachine` and carries out the actions it returns. Everything it shares with other
/// threads goes through `Publisher.control`.
final class PublisherSession {
    private let publisher: Publisher
    private let logger: Logger
    private var machine: PublisherMachine
    private var client: MQTTClient?
    private var random = SystemRandomNumberGenerator()
    /// Acknowledgements and fills are gathered over one turn and carried out once.
    private var acks: [Int64] = []
    private var fillWanted = false
    /// The session profile asked for a new session (its primary host went offline).
    private var restartWanted = false

    init(publisher: Publisher) {
        self.publisher = publisher
        self.logger = publisher.logger
        let config = publisher.config
        machine = PublisherMachine(
            brokerCount: config.brokers.count, window: config.inflightWindow,
            backoff: ReconnectBackoff(minSeconds: config.reconnectMinSeconds, maxSeconds: config.reconnectMaxSeconds),
            connectTimeoutNanos: UInt64(Publisher.connectTimeoutMs) * 1_000_000)
        machine.subscriptions = publisher.profile?.subscriptions ?? []
        machine.subscriptions += publisher.commands.map { [$0.filter] } ?? []
    }

    private var config: MQTTConfig { publisher.config }
    private var now: UInt64 { publisher.clock.monotonicNanos() }
    private var jitter: Double { Double.random(in: 0...1, using: &random) }

    func run() {
        guard !config.brokers.isEmpty else {
            logger.error("no MQTT broker configured: nothing will be published")
            return
        }
        logger.info("MQTT publisher started", metadata: ["brokers": "\(config.brokers.count)"])
        while true {
            publisher.touchProgress()
            publisher.controlSignal.drain()
            let (stop, abandon, drainMs) = publisher.control.withLock { control in
                defer { control.abandonRequested = false }
                return (control.stopRequested, control.abandonRequested, control.drainTimeoutMs)
            }
            if stop {
                shutDown(drainTimeoutMs: drainMs)
                return
            }
            if abandon { client?.abandonConnection() }
            perform(machine.tick(now: now, jitter: jitter))
            finishTurn()
            sendCommandOutbox()
            waitForWork()
            finishTurn()
            if restartWanted { restartSession() }
        }
    }

    /// Sleeps until something happens: while connected, in `poll()` on the socket, the queue's wake signal and the
    /// control signal (timeout: the keepalive); while connecting, libmosquitto's own loop drives the handshake;
    /// while waiting to reconnect, on the control signal until the attempt is due.
    private func waitForWork() {
        let control = publisher.controlSignal
        switch machine.phase {
        case .waiting(let until):
            let millis = until > now ? Int32(min((until - now) / 1_000_000 + 1, 60_000)) : 0
            control.wait(timeoutMs: millis)
        case .connecting:
            guard let client else { return }
            let error = client.loop(timeoutMs: 100)
            handleEvents(of: client)
            if let error, self.client === client { lost(error) }
        case .connected:
            guard let client else { return }
            pollConnected(client)
        }
    }

    /// One wait in `poll()` and what follows it; `deadline` (monotonic) bounds the wait during a stop.
    private func pollConnected(_ client: MQTTClient, deadline: UInt64? = nil) {
        let wake = publisher.queue.wakeup
        let socket = client.socketDescriptor
        var fds = [
            pollfd(fd: publisher.controlSignal.fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: socket, events: Int16(POLLIN) | (client.wantsWrite ? Int16(POLLOUT) : 0), revents: 0),
        ]
        // PINGREQ is due a keepalive after the last packet out: waking at a quarter of it keeps the broker's 1.5x
        // grace with room to spare; a refusal that comes due wakes us earlier.
        var timeout = Int64(max(config.keepaliveSeconds, 1)) * 250
        for limit in [machine.nextDeadline, deadline].compactMap({ $0 }) {
            timeout = min(timeout, limit > now ? Int64((limit - now) / 1_000_000) + 1 : 0)
        }
        _ = poll(&fds, socket >= 0 ? 3 : 2, Int32(timeout))
        if fds[1].revents != 0 {
            wake.drain()
            perform(machine.woken())
        }
        var error: MQTTError?
        if socket >= 0 && fds[2].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 { error = client.loopRead() }
        if error == nil && client.wantsWrite { error = client.loopWrite() }
        if error == nil { error = client.loopMisc() }
        handleEvents(of: client)
        if let error, self.client === client { lost(error) }
    }

    private func handleEvents(of client: MQTTClient) {
        for event in client.takeEvents() {
            // Events of a client dropped meanwhile belong to a connection that is gone.
            guard self.client === client else { return }
            switch event {
            case .connected(let reasonCode):
                if reasonCode == 0 { connected(client) }
                let error = MQTTError.connectRefused(reasonCode: reasonCode, broker: client.broker)
                if reasonCode != 0 { attemptFailed(error) }
            case .disconnected(let reasonCode):
                // A broker DISCONNECT carries an MQTT reason code (≥ 0x80); a lost link a MOSQ_ERR_* value (with the
                // TLS diagnosis when a TLS alert ended it).
                lost(client.endedError(reasonCode: reasonCode))
            case .published(let mid, let reasonCode):
                let (actions, refused) = machine.puback(mid: mid, reasonCode: reasonCode, now: now)
                if let refused { logRefusal(refused, reasonCode: reasonCode) }
                perform(actions)
            case .message(let message):
                if publisher.commands?.take(message) == true { continue }
                switch publisher.profile?.inbound(message) {
                // Not while this session is ending: its births would follow the death certificate.
                case .births? where machine.isConnected && !restartWanted:
                    publishBirths()
                    fillWanted = true
                case .restart? where machine.isConnected: restartWanted = true
                default: break
                }
            case .subscribed:
                break
            }
        }
    }

    private func perform(_ actions: [PublisherMachine.Action]) {
        for action in actions {
            switch action {
            case .connect(let index): connect(to: index)
            case .dropClient: client = nil
            case .subscribe(let filters): subscribe(filters)
            case .announce: announce()
            case .fill: fillWanted = true
            case .acknowledge(let seqs): acks += seqs
            case .release(let seqs): publisher.queue.release(seqs)
            }
        }
    }

    /// Carries out what one turn gathered: one acknowledgement call, one fill of the window.
    private func finishTurn() {
        if !acks.isEmpty {
            publisher.queue.acknowledge(acks)
            let count = acks.count
            acks.removeAll(keepingCapacity: true)
            publisher.updateStats { $0.ackedTotal += count }
        }
        if fillWanted {
            fillWanted = false
            fillWindow()
        }
        publisher.updateStats { $0.inFlight = machine.inFlight.count }
    }

    private func connect(to index: Int) {
        let broker = config.brokers[index]
        let name = "\(broker.host):\(broker.port)"
        publisher.updateStats { $0.broker = name }
        logger.debug("connecting to MQTT broker", metadata: ["broker": "\(name)"])
        do {
            let client = try MQTTClient(config: config)
            // The Will goes with every CONNECT, so each attempt carries a fresh one (libmosquitto reuses the old).
            if let profile = publisher.profile {
                let will = profile.nextWill()
                try client.setWill(topic: will.topic, payload: will.payload, qos: 1, retain: false)
            } else {
                let will = StatusPayload.offline(
                    reason: "connection lost", version: publisher.version, at: publisher.clock.now())
                try client.setWill(topic: publisher.topics.status, payload: will, qos: 1, retain: true)
            }
            self.client = client
            try client.connect(host: broker.host, port: broker.port, keepaliveSeconds: config.keepaliveSeconds)
        } catch {
            attemptFailed(error)
        }
    }

    private func connected(_ client: MQTTClient) {
        logger.info("connected to MQTT broker", metadata: ["broker": "\(client.broker)"])
        publisher.updateStats { stats in
            stats.connected = true
            stats.connects += 1
            stats.broker = client.broker
        }
        perform(machine.connack(reasonCode: 0, now: now, jitter: jitter))
    }

    /// The online status first, then the last retained message of every topic (device availability, alert
    /// state): a broker we fail over or are reconfigured to has none of them.
    private func announce() {
        guard let client else { return }
        let online = StatusPayload.online(version: publisher.version, at: publisher.clock.now())
        let retained = publisher.control.withLock { $0.retained }
        // With a session profile its births replace the online status (its death certificate is the Will).
        if publisher.profile?.connected() == .births { publishBirths() }
        let status = publisher.profile == nil ? [(publisher.topics.status, online, 1, "application/json")] : []
        let messages =
            status
            + retained.keys.sorted().map { topic in
                let r = retained[topic]!
                return (r.topic, r.body, r.qos, r.contentType)
            }
        for (topic, body, qos, contentType) in messages {
            do {
                let mid = try client.publish(
                    topic: topic, payload: body, qos: qos, retain: true, contentType: contentType)
                machine.sentUntracked(mid: mid)
            } catch {
                logger.warning("cannot publish retained state", metadata: ["topic": "\(topic)", "error": "\(error)"])
            }
        }
    }

    /// The session profile's births, in order, QoS 0.
    private func publishBirths() {
        guard let client, let profile = publisher.profile else { return }
        for (topic, payload) in profile.births(at: publisher.clock.now()) {
            do {
                machine.sentUntracked(mid: try client.publish(topic: topic, payload: payload, qos: 0, retain: false))
            } catch {
                logger.warning("cannot publish a birth", metadata: ["topic": "\(topic)", "error": "\(error)"])
            }
        }
    }

    private func subscribe(_ filters: [String]) {
        guard let client else { return }
        for filter in filters {
            do {
                _ = try client.subscribe(filter, qos: 1)
            } catch {
                logger.warning("cannot subscribe", metadata: ["filter": "\(filter)", "error": "\(error)"])
            }
        }
    }

    /// Leases records up to the in-flight window and hands them to the library.
    @discardableResult
    private func fillWindow() -> Int {
        guard machine.room > 0, let client, !restartWanted, publisher.profile?.holdsData != true else { return 0 }
        let deliveries = publisher.queue.lease(limit: machine.room, now: publisher.clock.now())
        var unsent: [Int64] = []
        var sent = 0
        client.corked {
            for delivery in deliveries {
                let record = delivery.record
                guard self.client === client, client.isConnected else {
                    unsent.append(record.seq)
                    continue
                }
                let message = record.message
                let body =
                    publisher.profile?.frame(message, historical: delivery.historical)
                    ?? PayloadFraming.frame(message.body, seq: record.seq, historical: delivery.historical)
                do {
                    let mid = try client.publish(
                        topic: message.topic, payload: body, qos: Int(message.qos), retain: message.retain,
                        contentType: message.contentType, userProperties: [UserProperty("seq", String(record.seq))])
                    machine.sent(seq: record.seq, mid: mid, topic: message.topic)
                    sent += 1
                    if message.retain {
                        let copy = PublisherMachine.Retained(
                            topic: message.topic, body: body, qos: Int(message.qos), contentType: message.contentType)
                        publisher.control.withLock { $0.retained[message.topic] = copy }
                    }
                } catch {
                    if client.isConnected {
                        // The library refused this message itself (bad topic, oversize): retry later like a refusal.
                        logger.warning(
                            "record not publishable",
                            metadata: [
                                "seq": "\(record.seq)", "topic": "\(message.topic)", "error": "\(error)",
                            ])
                        machine.notPublishable(seq: record.seq, now: now)
                    } else {
                        unsent.append(record.seq)
                    }
                }
            }
        }
        if sent > 0 {
            publisher.updateStats { stats in
                stats.publishedTotal += sent
                stats.lastPublishAt = publisher.clock.now()
            }
        }
        if !unsent.isEmpty { publisher.queue.release(unsent) }
        return deliveries.count
    }

    private func logRefusal(_ entry: PublisherMachine.InFlight, reasonCode: Int) {
        let reason = MQTTError.reasonString(reasonCode)
        logger.warning(
            "broker refused a record",
            metadata: [
                "seq": "\(entry.seq)", "topic": "\(entry.topic)", "reason": "\(reason)", "reasonCode": "\(reasonCode)",
            ])
        let error = MQTTError(
            code: MQTTError.operationCode(reasonCode), reasonCode: reasonCode,
            message: "broker refused \(entry.topic): \(reason)")
        publisher.updateStats { stats in
            stats.rejectedTotal += 1
            stats.lastError = error
        }
    }

    /// A connection attempt failed before CONNACK success: the next broker after a backoff wait.
    private func attemptFailed(_ error: any Error) {
        let attempted = config.brokers[machine.brokerIndex]
        let failed = client?.broker ?? "\(attempted.host):\(attempted.port)"
        perform(machine.attemptFailed(now: now, jitter: jitter))
        recordLoss(error, broker: failed, wasConnected: false)
    }

    /// An established connection (or an attempt) ended.
    private func lost(_ error: MQTTError) {
        guard machine.isConnected else {
            attemptFailed(error)
            return
        }
        let broker = client?.broker ?? "?"
        perform(machine.connectionLost(now: now, jitter: jitter))
        recordLoss(error, broker: broker, wasConnected: true)
    }

    private var retryDelaySeconds: Double {
        guard case .waiting(let until) = machine.phase, until > now else { return 0 }
        return Double(until - now) / 1e9
    }

    /// Counts a lost connection or a failed attempt and logs it with the wait the machine chose.
    private func recordLoss(_ error: any Error, broker: String, wasConnected: Bool) {
        let mqttError = error as? MQTTError ?? MQTTError(code: .other, message: "\(error)")
        publisher.updateStats { stats in
            stats.connected = false
            if wasConnected { stats.disconnects += 1 } else { stats.failedAttempts += 1 }
            stats.lastError = mqttError
            stats.inFlight = 0
        }
        logger.warning(
            wasConnected ? "MQTT connection lost" : "MQTT connection attempt failed",
            metadata: ["broker": "\(broker)", "error": "\(error)", "retryInSeconds": "\(retryDelaySeconds)"])
    }

    /// The session profile ended the session (Sparkplug: the primary host went offline): its death certificate,
    /// DISCONNECT, what was in flight back to the queue, and a new connection at once.
    private func restartSession() {
        defer { restartWanted = false }
        guard machine.isConnected, let client else { return }
        logger.notice("ending the MQTT session for the session profile", metadata: ["broker": "\(client.broker)"])
        publishOfflineStatus()
        client.disconnect()
        perform(machine.sessionEnded(now: now))
        finishTurn()
        publisher.updateStats { stats in
            stats.connected = false
            stats.inFlight = 0
        }
    }

    /// Clean stop: send what is queued and settle the window (bounded by `drainTimeoutMs`), publish the retained
    /// offline status, DISCONNECT, give back what is left.
    private func shutDown(drainTimeoutMs: Int) {
        if machine.isConnected, let client {
            let deadline = now + UInt64(max(drainTimeoutMs, 0)) * 1_000_000
            var queueEmpty = false
            while self.client === client, now < deadline {
                publisher.touchProgress()
                if machine.room > 0 && !queueEmpty { queueEmpty = fillWindow() == 0 }
                if queueEmpty && machine.inFlight.isEmpty { break }
                pollConnected(client, deadline: deadline)
                finishTurn()
            }
            publishOfflineStatus()
        }
        client?.disconnect()
        let leftover = machine.stopped()
        perform(leftover)
        finishTurn()
        publisher.updateStats { stats in
            stats.connected = false
            stats.inFlight = 0
        }
        let released = leftover.reduce(0) { count, action in
            if case .release(let seqs) = action { return count + seqs.count }
            return count
        }
        logger.info("MQTT publisher stopped", metadata: ["released": "\(released)"])
    }

    private func publishOfflineStatus() {
        guard let client else { return }
        let offline = StatusPayload.offline(reason: "stopped", version: publisher.version, at: publisher.clock.now())
        let mid: Int32
        do {
            if let death = publisher.profile?.cleanStop() {
                mid = try client.publish(topic: death.topic, payload: death.payload, qos: 1, retain: false)
            } else {
                mid = try client.publish(
                    topic: publisher.topics.status, payload: offline, qos: 1, retain: true,
                    contentType: "application/json")
            }
        } catch {
            logger.warning("cannot publish the offline status", metadata: ["error": "\(error)"])
            return
        }
        machine.sentUntracked(mid: mid)
        let deadline = now + UInt64(Publisher.offlineStatusTimeoutMs) * 1_000_000
        while machine.untracked.contains(mid), self.client === client, now < deadline {
            publisher.touchProgress()
            pollConnected(client, deadline: deadline)
            finishTurn()
        }
    }
}

extension PublisherSession {
    /// Publishes the queued command replies (QoS 1, not journaled: a reply in flight when the connection is lost
    /// is lost, the audit event is not) and, when asked, the retained state again. While no broker is connected
    /// they wait in the outbox (at most `CommandOutbox.limit` replies; a connection announces the state anyway).
    private func sendCommandOutbox() {
        guard let client, machine.isConnected else { return }
        let outbox = publisher.control.withLock { control in
            defer { control.commandOutbox = CommandOutbox() }
            return control.commandOutbox
        }
        if outbox.republish { announce() }
        for reply in outbox.replies {
            do {
                let mid = try client.publish(
                    topic: reply.topic, payload: reply.body, qos: 1, retain: false, contentType: "application/json",
                    correlationData: reply.correlationData)
                machine.sentUntracked(mid: mid)
            } catch {
                logger.warning(
                    "cannot publish a command reply", metadata: ["topic": "\(reply.topic)", "error": "\(error)"])
            }
        }
    }
}
