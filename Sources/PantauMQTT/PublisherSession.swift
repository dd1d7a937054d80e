import Logging
import PantauCore

#if canImport(Glibc)
import Glibc
#endif

/// The publisher's connection state machine. Lives on the publishing thread only; everything it shares with other
/// threads goes through `Publisher.control`.
final class PublisherSession {
    private enum Phase {
        /// No connection; the next attempt is due at this monotonic time.
        case waiting(until: UInt64)
        case connecting(deadline: UInt64)
        case connected
    }

    /// A journal record handed to the library, waiting for its PUBACK.
    private struct InFlight {
        var seq: Int64
        var topic: String
    }

    private let publisher: Publisher
    private var logger: Logger
    private var phase: Phase = .waiting(until: 0)
    private var client: MQTTClient?
    private var brokerIndex = 0
    private var backoff: ReconnectBackoff
    private var random = SystemRandomNumberGenerator()
    private var inFlight: [Int32: InFlight] = [:]
    private var statusMid: Int32?
    private var acked: [Int64] = []
    /// Records the broker refused: released back to the queue when the time comes, so a refused topic cannot spin.
    private var refused: [(seq: Int64, due: UInt64)] = []
    private var refusals: [Int64: Int] = [:]

    init(publisher: Publisher) {
        self.publisher = publisher
        self.logger = publisher.logger
        self.backoff = ReconnectBackoff(
            minSeconds: publisher.config.reconnectMinSeconds, maxSeconds: publisher.config.reconnectMaxSeconds)
    }

    private var config: MQTTConfig { publisher.config }
    private var now: UInt64 { publisher.clock.monotonicNanos() }

    func run() {
        guard !config.brokers.isEmpty else {
            logger.error("no MQTT broker configured: nothing will be published")
            return
        }
        logger.info("MQTT publisher started", metadata: ["brokers": "\(config.brokers.count)"])
        while true {
            publisher.touchProgress()
            let (stop, abandon, drainMs) = publisher.control.withLock { control in
                defer { control.abandonRequested = false }
                return (control.stopRequested, control.abandonRequested, control.drainTimeoutMs)
            }
            if stop {
                shutDown(drainTimeoutMs: drainMs)
                return
            }
            if abandon { client?.abandonConnection() }
            releaseRefused(dueBy: now)
            turn()
        }
    }

    /// One step: wait for the next attempt, start one, or loop the connection and keep the window full.
    private func turn() {
        switch phase {
        case .waiting(let until):
            let current = now
            if current >= until {
                attemptConnect()
            } else {
                let sleepNanos = min(until - current, UInt64(Publisher.loopTimeoutMs) * 1_000_000)
                usleep(useconds_t(sleepNanos / 1000))
            }
        case .connecting, .connected:
            loopOnce(fillWindow: true)
            if case .connecting(let deadline) = phase, now > deadline {
                let error = MQTTError(
                    code: .timeout, message: "no CONNACK from \(client?.broker ?? "?") "
                        + "within \(Publisher.connectTimeoutMs) ms")
                attemptFailed(error)
            }
        }
    }

    private func loopOnce(fillWindow: Bool) {
        guard let client else { return }
        let loopError = client.loop(timeoutMs: Publisher.loopTimeoutMs)
        for event in client.takeEvents() {
            handle(event)
        }
        if let loopError, self.client != nil {
            connectionEnded(loopError)
        }
        if fillWindow, case .connected = phase {
            self.fillWindow()
        }
        flushAcks()
    }

    private func attemptConnect() {
        let broker = config.brokers[brokerIndex]
        let name = "\(broker.host):\(broker.port)"
        publisher.updateStats { $0.broker = name }
        logger.debug("connecting to MQTT broker", metadata: ["broker": "\(name)"])
        do {
            let client = try MQTTClient(config: config)
            // The Will goes with every CONNECT, so each attempt carries a fresh one (libmosquitto reuses the old).
            let will = StatusPayload.offline(
                reason: "connection lost", version: publisher.version, at: publisher.clock.now())
            try client.setWill(topic: publisher.topics.status, payload: will, qos: 1, retain: true)
            try client.connect(host: broker.host, port: broker.port, keepaliveSeconds: config.keepaliveSeconds)
            self.client = client
            phase = .connecting(deadline: now + UInt64(Publisher.connectTimeoutMs) * 1_000_000)
        } catch {
            attemptFailed(error)
        }
    }

    private func handle(_ event: MQTTEvent) {
        switch event {
        case .connected(let reasonCode):
            if reasonCode == 0 {
                connected()
            } else {
                attemptFailed(MQTTError.connectRefused(reasonCode: reasonCode, broker: client?.broker ?? "?"))
            }
        case .disconnected(let reasonCode):
            guard let client else { return }
            // A broker DISCONNECT carries an MQTT reason code (≥ 0x80); a lost link a MOSQ_ERR_* value (with the
            // TLS diagnosis when a TLS alert ended it).
            connectionEnded(client.endedError(reasonCode: reasonCode))
        case .published(let mid, let reasonCode):
            acknowledged(mid: mid, reasonCode: reasonCode)
        case .subscribed, .message:
            break
        }
    }

    private func connected() {
        guard let client else { return }
        phase = .connected
        backoff.reset()
        logger.info("connected to MQTT broker", metadata: ["broker": "\(client.broker)"])
        publisher.updateStats { stats in
            stats.connected = true
            stats.connects += 1
            stats.broker = client.broker
        }
        let online = StatusPayload.online(version: publisher.version, at: publisher.clock.now())
        do {
            statusMid = try client.publish(
                topic: publisher.topics.status, payload: online, qos: 1, retain: true, contentType: "application/json")
        } catch {
            logger.warning("cannot publish the online status", metadata: ["error": "\(error)"])
        }
    }

    /// Leases records up to the in-flight window and hands them to the library.
    private func fillWindow() {
        let room = max(config.inflightWindow, 1) - inFlight.count
        guard room > 0, let client else { return }
        let deliveries = publisher.queue.lease(limit: room, now: publisher.clock.now())
        var unsent: [Int64] = []
        for delivery in deliveries {
            let record = delivery.record
            guard client.isConnected, self.client != nil else {
                unsent.append(record.seq)
                continue
            }
            let body = PayloadFraming.frame(record.message.body, seq: record.seq, historical: delivery.historical)
            do {
                let mid = try client.publish(
                    topic: record.message.topic, payload: body, qos: Int(record.message.qos),
                    retain: record.message.retain, contentType: record.message.contentType,
                    userProperties: [UserProperty("seq", String(record.seq))])
                inFlight[mid] = InFlight(seq: record.seq, topic: record.message.topic)
                publisher.updateStats { stats in
                    stats.publishedTotal += 1
                    stats.lastPublishAt = publisher.clock.now()
                    stats.inFlight = inFlight.count
                }
            } catch {
                if client.isConnected {
                    // The library refused this message itself (bad topic, oversize): retry later like a refusal.
                    logger.warning("record not publishable", metadata: [
                        "seq": "\(record.seq)", "topic": "\(record.message.topic)", "error": "\(error)",
                    ])
                    refuse(record.seq)
                } else {
                    unsent.append(record.seq)
                }
            }
        }
        if !unsent.isEmpty { publisher.queue.release(unsent) }
    }

    private func acknowledged(mid: Int32, reasonCode: Int) {
        if mid == statusMid {
            statusMid = nil
            if reasonCode >= 0x80 {
                logger.warning("broker refused the gateway status", metadata: [
                    "topic": "\(publisher.topics.status)", "reason": "\(MQTTError.reasonString(reasonCode))",
                ])
            }
            return
        }
        guard let entry = inFlight.removeValue(forKey: mid) else { return }
        if reasonCode < 0x80 {
            acked.append(entry.seq)
            refusals[entry.seq] = nil
        } else {
            let error = MQTTError(
                code: MQTTError.operationCode(reasonCode), reasonCode: reasonCode,
                message: "broker refused \(entry.topic): \(MQTTError.reasonString(reasonCode))")
            logger.warning("broker refused a record", metadata: [
                "seq": "\(entry.seq)", "topic": "\(entry.topic)", "reason": "\(MQTTError.reasonString(reasonCode))",
                "reasonCode": "\(reasonCode)",
            ])
            publisher.updateStats { stats in
                stats.rejectedTotal += 1
                stats.lastError = error
            }
            refuse(entry.seq)
        }
        publisher.updateStats { $0.inFlight = inFlight.count }
    }

    /// Holds a refused record back for a growing delay (capped at the longest reconnect wait), then releases it.
    private func refuse(_ seq: Int64) {
        let count = refusals[seq, default: 0]
        refusals[seq] = count + 1
        var seconds = max(config.reconnectMinSeconds, 0.001)
        for _ in 0..<min(count, 32) { seconds *= 2 }
        seconds = min(seconds, max(config.reconnectMaxSeconds, config.reconnectMinSeconds))
        refused.append((seq: seq, due: now + UInt64(seconds * 1e9)))
    }

    private func releaseRefused(dueBy time: UInt64) {
        guard refused.contains(where: { $0.due <= time }) else { return }
        let due = refused.filter { $0.due <= time }.map(\.seq)
        refused.removeAll { $0.due <= time }
        publisher.queue.release(due.sorted())
    }

    private func flushAcks() {
        guard !acked.isEmpty else { return }
        publisher.queue.acknowledge(acked)
        let count = acked.count
        acked.removeAll(keepingCapacity: true)
        publisher.updateStats { $0.ackedTotal += count }
    }

    /// A connection attempt failed before CONNACK success: try the next broker after a backoff wait.
    private func attemptFailed(_ error: any Error) {
        let failedBroker = client?.broker ?? "\(config.brokers[brokerIndex].host):\(config.brokers[brokerIndex].port)"
        dropConnection(error, wasConnected: false)
        brokerIndex = (brokerIndex + 1) % config.brokers.count
        let delay = scheduleRetry()
        logger.warning("MQTT connection attempt failed", metadata: [
            "broker": "\(failedBroker)", "error": "\(error)", "retryInSeconds": "\(delay)",
        ])
    }

    /// An established connection (or an attempt in progress) ended: retry the same broker after a backoff wait.
    private func connectionEnded(_ error: MQTTError) {
        guard case .connected = phase else {
            attemptFailed(error)
            return
        }
        let broker = client?.broker ?? "?"
        dropConnection(error, wasConnected: true)
        let delay = scheduleRetry()
        logger.warning("MQTT connection lost", metadata: [
            "broker": "\(broker)", "error": "\(error)", "retryInSeconds": "\(delay)",
        ])
    }

    /// Forgets the client (a new one per attempt, so libmosquitto resends nothing from RAM) and gives every record
    /// in flight back to the queue: the journal resends them, in order, after the next connect.
    private func dropConnection(_ error: any Error, wasConnected: Bool) {
        client = nil
        statusMid = nil
        flushAcks()
        let seqs = inFlight.values.map(\.seq).sorted()
        inFlight.removeAll()
        if !seqs.isEmpty { publisher.queue.release(seqs) }
        let mqttError = error as? MQTTError ?? MQTTError(code: .other, message: "\(error)")
        publisher.updateStats { stats in
            stats.connected = false
            if wasConnected {
                stats.disconnects += 1
            } else {
                stats.failedAttempts += 1
            }
            stats.lastError = mqttError
            stats.inFlight = 0
        }
    }

    private func scheduleRetry() -> Double {
        let delay = backoff.nextDelay(using: &random)
        phase = .waiting(until: now + UInt64(delay * 1e9))
        return delay
    }

    /// Clean stop: drain the window, publish the retained offline status, DISCONNECT, give back what is left.
    private func shutDown(drainTimeoutMs: Int) {
        if case .connected = phase {
            let drainDeadline = now + UInt64(max(drainTimeoutMs, 0)) * 1_000_000
            while !inFlight.isEmpty, client != nil, now < drainDeadline {
                publisher.touchProgress()
                loopOnce(fillWindow: false)
            }
            publishOfflineStatus()
        }
        client?.disconnect()
        client = nil
        flushAcks()
        let leftover = (inFlight.values.map(\.seq) + refused.map(\.seq)).sorted()
        inFlight.removeAll()
        refused.removeAll()
        if !leftover.isEmpty { publisher.queue.release(leftover) }
        publisher.updateStats { stats in
            stats.connected = false
            stats.inFlight = 0
        }
        logger.info("MQTT publisher stopped", metadata: ["released": "\(leftover.count)"])
    }

    private func publishOfflineStatus() {
        guard let client else { return }
        let offline = StatusPayload.offline(reason: "stopped", version: publisher.version, at: publisher.clock.now())
        do {
            statusMid = try client.publish(
                topic: publisher.topics.status, payload: offline, qos: 1, retain: true, contentType: "application/json")
        } catch {
            logger.warning("cannot publish the offline status", metadata: ["error": "\(error)"])
            return
        }
        let deadline = now + UInt64(Publisher.offlineStatusTimeoutMs) * 1_000_000
        while statusMid != nil, self.client != nil, now < deadline {
            publisher.touchProgress()
            loopOnce(fillWindow: false)
        }
    }
}
