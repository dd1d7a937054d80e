import Foundation
import Logging
import PantauCore
import PantauPlatform
import Testing

@testable import PantauMQTT

private let topics = TopicScheme(prefix: "pantau", identity: GatewayIdentity(site: "site-a", id: "gw-01"))

private func records(_ count: Int, device: String = "aq-01") -> [JournalRecord] {
    (1...count).map { n in
        let message = OutboundMessage(
            kind: .telemetry, topic: topics.telemetry(device), body: Array("[{\"n\":\"pm25\",\"v\":\(n)}]".utf8),
            device: device, acquiredAt: 1_700_000_000_000 + Int64(n), contentType: "application/senml+json")
        return JournalRecord(seq: Int64(n), message: message)
    }
}

private func makePublisher(
    _ broker: TestBroker, _ queue: FakeDeliveryQueue, window: Int = 16, minSeconds: Double = 0.05,
    maxSeconds: Double = 0.5, deadPortFirst: Int? = nil
) -> Publisher {
    let dead = deadPortFirst.map { [MQTTConfig.Broker(host: "127.0.0.1", port: $0)] } ?? []
    let config = MQTTConfig(
        brokers: dead + [MQTTConfig.Broker(host: broker.host, port: broker.port)],
        clientId: "gw-01-\(UUID().uuidString)",
        keepaliveSeconds: 5, inflightWindow: window, reconnectMinSeconds: minSeconds, reconnectMaxSeconds: maxSeconds)
    var logger = Logger(label: "test.publisher")
    logger.logLevel = .debug
    return Publisher(
        config: config, topics: topics, queue: queue, clock: SystemClock(), logger: logger, version: "1.2.3")
}

private func seqProperty(_ message: MQTTMessage) -> Int64? {
    message.userProperties.first { $0.name == "seq" }.flatMap { Int64($0.value) }
}

@Suite("Publisher against a real mosquitto", .serialized)
struct PublisherTests {
    @Test("every record is delivered and acknowledged exactly once, in order, with online then offline status")
    func deliversInOrder() throws {
        let broker = try TestBroker()
        let watcher = try TestSubscriber(host: broker.host, port: broker.port, filter: "pantau/#")
        let queue = FakeDeliveryQueue(records(300))
        let publisher = makePublisher(broker, queue)
        publisher.start()
        let telemetry = topics.telemetry("aq-01")
        let done = waitUntil(20, pumping: [watcher]) {
            queue.acknowledgedCount == 300 && watcher.messages(on: telemetry).count == 300
        }
        #expect(done)
        #expect(queue.ackLog == Array(1...300))
        #expect(queue.releaseLog.isEmpty)

        let delivered = watcher.messages(on: telemetry)
        #expect(delivered.compactMap(seqProperty) == Array(1...300))
        #expect(delivered.first?.text == "[{\"seq\":1,\"n\":\"pm25\",\"v\":1}]")
        #expect(delivered.allSatisfy { $0.contentType == "application/senml+json" && $0.qos == 1 })

        let online = watcher.messages(on: topics.status).first
        #expect(online.map { statusFields($0.text) } == ["state": "online", "version": "1.2.3"])

        let stats = publisher.snapshot()
        #expect(stats.connected && stats.connects == 1 && stats.disconnects == 0)
        #expect(stats.publishedTotal == 300 && stats.ackedTotal == 300 && stats.rejectedTotal == 0)
        #expect(stats.broker == "\(broker.host):\(broker.port)")
        #expect(stats.lastPublishAt != nil)
        #expect(publisher.lastProgressNanos > 0)

        publisher.stop(drainTimeoutMs: 2000)
        #expect(publisher.snapshot().connected == false)
        // A client arriving later sees the retained offline status of a clean stop.
        let late = try TestSubscriber(host: broker.host, port: broker.port, filter: topics.status)
        #expect(late.pump(until: 5) { _ in !late.received.isEmpty })
        let status = late.received.first
        #expect(status?.retain == true)
        #expect(status.map { statusFields($0.text) } == ["state": "offline", "reason": "stopped", "version": "1.2.3"])
    }

    @Test("a connection that dies without DISCONNECT leaves the retained offline Will, then online again")
    func willOnConnectionLoss() throws {
        let broker = try TestBroker()
        let queue = FakeDeliveryQueue([])
        let publisher = makePublisher(broker, queue, minSeconds: 0.1, maxSeconds: 0.2)
        // Retain-as-published: the live watcher sees whether each status was sent retained.
        let watcher = try TestSubscriber(
            host: broker.host, port: broker.port, filter: topics.status, retainAsPublished: true)
        publisher.start()
        #expect(waitUntil(10, pumping: [watcher]) { publisher.snapshot().connected })
        publisher.simulateConnectionLoss()
        #expect(waitUntil(15, pumping: [watcher]) { watcher.received.count >= 3 })

        let statuses = watcher.received.prefix(3)
        let states = statuses.map { $0.text.contains("\"online\"") ? "online" : "offline" }
        #expect(states == ["online", "offline", "online"])
        #expect(statuses.allSatisfy { $0.retain && $0.qos == 1 })
        let will = statuses.dropFirst().first
        #expect(
            will.map { statusFields($0.text) } == ["state": "offline", "reason": "connection lost", "version": "1.2.3"])
        let stats = publisher.snapshot()
        #expect(stats.connects == 2 && stats.disconnects == 1)
        #expect(stats.lastError?.code == .tcp)
        publisher.stop(drainTimeoutMs: 1000)
    }

    @Test("broker killed mid-publish: in-flight records are released, resent after restart, none lost")
    func brokerRestart() throws {
        let broker = try TestBroker()
        let window = 8
        let queue = FakeDeliveryQueue(records(100))
        let publisher = makePublisher(broker, queue, window: window, minSeconds: 0.05, maxSeconds: 0.3)
        queue.setPaused(true)
        publisher.start()
        #expect(waitUntil(10) { publisher.snapshot().connected })
        // Frozen broker: PUBLISHes go out, no PUBACK comes back, so the window fills and stays full.
        broker.suspend()
        queue.setPaused(false)
        #expect(waitUntil(20) { publisher.snapshot().inFlight == window })
        #expect(queue.acknowledgedCount == 0)
        broker.stop()
        #expect(waitUntil(20) { queue.releaseLog.count >= window })
        #expect(Set(queue.releaseLog.prefix(window)) == Set(1...Int64(window)))
        #expect(publisher.snapshot().connected == false)

        try broker.start()
        #expect(waitUntil(30) { queue.acknowledgedCount == 100 })
        let acked = Set(queue.ackLog)
        #expect(acked == Set(1...100))
        let stats = publisher.snapshot()
        #expect(stats.connects >= 2)
        #expect(stats.disconnects >= 1)
        #expect(stats.lastError != nil)
        publisher.stop(drainTimeoutMs: 1000)
    }

    @Test("a PUBACK refusal (ACL) is counted and the record retried later, others still delivered")
    func refusedByACL() throws {
        let directory = try TestBroker.makeTemporaryDirectory()
        let acl = directory.appendingPathComponent("acl")
        try "topic readwrite pantau/site-a/gw-01/status\ntopic readwrite pantau/site-a/gw-01/devices/aq-01/#\n"
            .write(to: acl, atomically: true, encoding: .utf8)
        let broker = try TestBroker(
            listenerLines: ["allow_anonymous true", "acl_file \(acl.path)"], directory: directory)
        let allowed = records(4)
        let denied = JournalRecord(
            seq: 5,
            message: OutboundMessage(
                kind: .telemetry, topic: topics.telemetry("forbidden"), body: Array("{\"v\":5}".utf8),
                device: "forbidden", acquiredAt: 0))
        let queue = FakeDeliveryQueue(allowed + [denied])
        let publisher = makePublisher(broker, queue, minSeconds: 0.2, maxSeconds: 0.4)
        publisher.start()
        #expect(waitUntil(10) { publisher.snapshot().rejectedTotal >= 2 })
        #expect(Set(queue.ackLog) == Set(1...4))
        #expect(queue.releaseLog.contains(5))
        let stats = publisher.snapshot()
        #expect(stats.lastError?.code == .notAuthorized)
        #expect(stats.lastError?.reasonCode == 0x87)
        #expect(stats.connected)
        publisher.stop(drainTimeoutMs: 500)
    }

    @Test("a dead first broker fails over to the next; QoS 0 records are acknowledged once sent")
    func failoverAndQoS0() throws {
        let broker = try TestBroker()
        let qos0 = records(20).map { record in
            var record = record
            record.message.qos = 0
            return record
        }
        let queue = FakeDeliveryQueue(qos0)
        let publisher = makePublisher(broker, queue, deadPortFirst: try TestBroker.freePort())
        publisher.start()
        #expect(waitUntil(10) { queue.acknowledgedCount == 20 })
        #expect(queue.ackLog == Array(1...20))
        let stats = publisher.snapshot()
        #expect(stats.broker == "\(broker.host):\(broker.port)")
        #expect(stats.failedAttempts >= 1)
        #expect(stats.lastError?.code == .tcp)
        #expect(stats.connects == 1 && stats.disconnects == 0)
        publisher.stop(drainTimeoutMs: 500)
    }

    @Test("a command reply queued while no broker is connected waits in the outbox and goes out once connected")
    func replyWaitsForTheConnection() throws {
        let broker = try TestBroker()
        let watcher = try TestSubscriber(host: broker.host, port: broker.port, filter: "replies/#")
        let publisher = makePublisher(broker, FakeDeliveryQueue([]), deadPortFirst: try TestBroker.freePort())
        publisher.reply(topic: "replies/1", body: Array("{\"status\":0}".utf8), correlationData: [7, 8])
        publisher.start()
        #expect(waitUntil(10, pumping: [watcher]) { !watcher.messages(on: "replies/1").isEmpty })
        let reply = watcher.messages(on: "replies/1")
        #expect(reply.map(\.text) == ["{\"status\":0}"])
        #expect(reply.first?.correlationData == [7, 8])
        publisher.stop(drainTimeoutMs: 500)
    }
}

/// The text fields of a status payload, checking that it also carries an integer `ts`.
private func statusFields(_ text: String) -> [String: String] {
    guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], object["ts"] is Int
    else {
        return [:]
    }
    return object.compactMapValues { $0 as? String }
}
