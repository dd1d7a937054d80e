import PantauCore
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// One step of `pantau mqtt-test`: `resolve`, `tcp`, `tls`, `mqtt connect`, `subscribe`, `publish`, `receive`.
public struct ProbeStep: Sendable, Hashable, CustomStringConvertible {
    /// The layer checked.
    public var name: String
    /// Whether the step passed; the probe stops after the first failing one.
    public var ok: Bool
    /// What was found, or why it failed, with a hint for the technician.
    public var detail: String

    public var description: String { "\(ok ? "ok  " : "FAIL") \(name): \(detail)" }
}

/// Checks a broker step by step, so a technician sees which layer fails: name resolution, TCP, TLS, the MQTT
/// connect (credentials), then a round trip of a random token on a test topic.
public enum MQTTProbe {
    /// Probes `config.brokers[brokerIndex]`; stops at the first failing step. Each step waits at most `timeoutMs`.
    /// Blocks: call it from the command line or a thread of ours.
    public static func run(config: MQTTConfig, topic: String, timeoutMs: Int, brokerIndex: Int = 0) -> [ProbeStep] {
        guard config.brokers.indices.contains(brokerIndex) else {
            return [ProbeStep(name: "resolve", ok: false, detail: "no broker \(brokerIndex + 1) in the configuration")]
        }
        let broker = config.brokers[brokerIndex]
        var steps: [ProbeStep] = []

        let addresses: [ResolvedAddress]
        switch resolve(host: broker.host, port: broker.port) {
        case .success(let found): addresses = found
        case .failure(let error):
            return [ProbeStep(name: "resolve", ok: false, detail: error.message)]
        }
        steps.append(
            ProbeStep(
                name: "resolve", ok: true, detail: "\(broker.host) → \(addresses.map(\.text).joined(separator: ", "))"))

        let tcp = connectTCP(addresses, port: broker.port, timeoutMs: timeoutMs)
        steps.append(tcp)
        guard tcp.ok else { return steps }

        let client: MQTTClient
        do {
            // A client id of its own: reusing the gateway's would take over (and end) the running session.
            client = try MQTTClient(config: config, clientId: "\(config.clientId)-probe-\(token().prefix(8))")
            try client.connect(
                host: broker.host, port: broker.port, keepaliveSeconds: config.keepaliveSeconds,
                timeoutMs: timeoutMs)
        } catch {
            if error.code == .tls {
                steps.append(ProbeStep(name: "tls", ok: false, detail: tlsFailure(error, config.tls)))
            } else {
                if let tls = config.tls {
                    steps.append(ProbeStep(name: "tls", ok: error.reasonCode != nil, detail: tlsPassed(tls, error)))
                    guard error.reasonCode != nil else { return steps }
                }
                steps.append(ProbeStep(name: "mqtt connect", ok: false, detail: error.description))
            }
            return steps
        }
        defer { client.disconnect() }
        if let tls = config.tls {
            steps.append(ProbeStep(name: "tls", ok: true, detail: tlsPassed(tls, nil)))
        }
        let who = config.username.map { " as \($0)" } ?? " anonymously"
        steps.append(ProbeStep(name: "mqtt connect", ok: true, detail: "MQTT 5 session with \(client.broker)\(who)"))
        steps += roundTrip(client, topic: topic, timeoutMs: timeoutMs)
        return steps
    }

    /// Subscribe, publish a random token at QoS 1, and wait for it to come back.
    private static func roundTrip(_ client: MQTTClient, topic: String, timeoutMs: Int) -> [ProbeStep] {
        var steps: [ProbeStep] = []
        var seen: [MQTTEvent] = []
        let subscribed: [Int]
        do {
            let mid = try client.subscribe(topic, qos: 1)
            subscribed = try waitFor(client, seen: &seen, timeoutMs: timeoutMs, what: "SUBACK for \(topic)") { event in
                if case .subscribed(mid, let granted) = event { granted } else { nil }
            }
        } catch {
            return [ProbeStep(name: "subscribe", ok: false, detail: error.description)]
        }
        if let refused = subscribed.first(where: { $0 >= 0x80 }) {
            let error = MQTTError(
                code: MQTTError.operationCode(refused), reasonCode: refused,
                message: "broker refused the subscription to \(topic): \(MQTTError.reasonString(refused))")
            return [ProbeStep(name: "subscribe", ok: false, detail: error.description)]
        }
        steps.append(ProbeStep(name: "subscribe", ok: true, detail: "\(topic) granted QoS \(subscribed.first ?? 0)"))

        let payload = "pantau-mqtt-test-\(token())"
        do throws(MQTTError) {
            let mid = try client.publish(
                topic: topic, payload: Array(payload.utf8), qos: 1, retain: false, contentType: "text/plain")
            let reason = try waitFor(client, seen: &seen, timeoutMs: timeoutMs, what: "PUBACK on \(topic)") { event in
                if case .published(mid, let reason) = event { reason } else { nil }
            }
            guard reason < 0x80 else {
                throw MQTTError(
                    code: MQTTError.operationCode(reason), reasonCode: reason,
                    message: "broker refused the publish to \(topic): \(MQTTError.reasonString(reason))")
            }
        } catch {
            steps.append(ProbeStep(name: "publish", ok: false, detail: error.description))
            return steps
        }
        steps.append(ProbeStep(name: "publish", ok: true, detail: "QoS 1 token acknowledged on \(topic)"))

        do {
            _ = try waitFor(client, seen: &seen, timeoutMs: timeoutMs, what: "the token back on \(topic)") { event in
                if case .message(let message) = event, message.text == payload { true } else { nil }
            }
            steps.append(ProbeStep(name: "receive", ok: true, detail: "token received back"))
        } catch {
            steps.append(
                ProbeStep(
                    name: "receive", ok: false,
                    detail: "\(error.description); the broker accepted the publish but did not deliver it back "
                        + "(check the read ACL for \(topic))"))
        }
        return steps
    }

    /// Loops until `match` returns a value for an event, or fails on timeout or a lost connection. Events that do
    /// not match stay in `seen` for a later wait (our own token can arrive before the PUBACK).
    private static func waitFor<T>(
        _ client: MQTTClient, seen: inout [MQTTEvent], timeoutMs: Int, what: String, match: (MQTTEvent) -> T?
    ) throws(MQTTError) -> T {
        let deadline = MQTTClient.monotonicMillis() + Int64(timeoutMs)
        while true {
            if let index = seen.firstIndex(where: { match($0) != nil }) {
                return match(seen.remove(at: index))!
            }
            guard MQTTClient.monotonicMillis() < deadline else { break }
            let error = client.loop(timeoutMs: 50)
            seen += client.takeEvents()
            if let error { throw error }
        }
        throw MQTTError(code: .timeout, message: "no \(what) within \(timeoutMs) ms")
    }

    private static func tlsPassed(_ tls: MQTTConfig.TLS, _ laterError: MQTTError?) -> String {
        guard laterError == nil || laterError?.reasonCode != nil else {
            return "handshake did not complete: \(laterError!.description)"
        }
        return "TLS 1.2+ handshake ok, broker certificate verified against \(tls.caFile)"
    }

    /// The client already names the reason (`MQTTError.tlsReason`, shared with the gateway's log).
    private static func tlsFailure(_ error: MQTTError, _ tls: MQTTConfig.TLS?) -> String {
        error.message
    }

    private static func token() -> String {
        var random = SystemRandomNumberGenerator()
        return String(random.next(), radix: 16) + String(random.next(), radix: 16)
    }
}
