import Foundation
import PantauCore
import Testing

@testable import PantauMQTT

/// Loops `client` until `done` says so over the events seen so far, or the bound passes (then returns what it has).
func drive(_ client: MQTTClient, upToMs: Int = 5000, until done: ([MQTTEvent]) -> Bool) -> [MQTTEvent] {
    var events: [MQTTEvent] = []
    let deadline = Date().addingTimeInterval(Double(upToMs) / 1000)
    while Date() < deadline {
        client.loop(timeoutMs: 20)
        events += client.takeEvents()
        if done(events) { break }
    }
    return events
}

func messages(_ events: [MQTTEvent]) -> [MQTTMessage] {
    events.compactMap { if case .message(let message) = $0 { message } else { nil } }
}

@Suite("MQTTClient against a real mosquitto", .serialized)
struct MQTTClientTests {
    @Test("publish with content type and a seq user property reaches a subscriber")
    func publishWithProperties() throws {
        let broker = try TestBroker()
        let subscriber = try MQTTClient(clientId: "sub-\(UUID().uuidString.prefix(8))")
        try subscriber.connect(host: broker.host, port: broker.port, keepaliveSeconds: 10, timeoutMs: 5000)
        let subMid = try subscriber.subscribe("t/#", qos: 1)
        let subAck = drive(subscriber) { $0.contains(.subscribed(mid: subMid, granted: [1])) }
        #expect(subAck.contains(.subscribed(mid: subMid, granted: [1])))

        let publisher = try MQTTClient(clientId: "pub-\(UUID().uuidString.prefix(8))")
        try publisher.connect(host: broker.host, port: broker.port, keepaliveSeconds: 10, timeoutMs: 5000)
        #expect(publisher.isConnected)
        let mid = try publisher.publish(
            topic: "t/a", payload: Array("{\"seq\":7}".utf8), qos: 1, retain: false,
            contentType: "application/senml+json", userProperties: [UserProperty("seq", "7")])
        let acked = drive(publisher) { events in
            events.contains { if case .published(mid, _) = $0 { true } else { false } }
        }
        let reason = acked.compactMap { if case .published(mid, let rc) = $0 { rc } else { nil } }.first
        #expect(reason.map { $0 < 0x80 } == true)

        let received = messages(drive(subscriber) { !messages($0).isEmpty })
        #expect(received.count == 1)
        #expect(received.first?.text == "{\"seq\":7}")
        #expect(received.first?.contentType == "application/senml+json")
        #expect(received.first?.userProperties == [UserProperty("seq", "7")])
    }

    @Test("once connected the library formats no log line per PUBLISH and PUBACK; before, the handshake logs")
    func noLogLinePerMessage() throws {
        let broker = try TestBroker()
        let publisher = try MQTTClient(clientId: "pub-\(UUID().uuidString.prefix(8))")
        try publisher.connect(host: broker.host, port: broker.port, keepaliveSeconds: 10, timeoutMs: 5000)
        #expect(publisher.isConnected)
        _ = publisher.takeEvents()
        // The handshake went through the callback (CONNECT sent, CONNACK received are debug lines).
        let linesAtConnack = publisher.libraryLogLines
        #expect(linesAtConnack >= 2)
        #expect(!publisher.libraryLogOn)
        var mids: Set<Int32> = []
        for n in 0..<50 {
            mids.insert(try publisher.publish(topic: "t/\(n)", payload: Array("x".utf8), qos: 1, retain: false))
        }
        let events = drive(publisher) { events in
            events.filter { if case .published = $0 { true } else { false } }.count == mids.count
        }
        #expect(events.filter { if case .published = $0 { true } else { false } }.count == 50)
        #expect(publisher.libraryLogLines == linesAtConnack)
    }

    @Test("publishing while disconnected is refused instead of queued in RAM")
    func noPublishWhileDisconnected() throws {
        let client = try MQTTClient(clientId: "idle")
        #expect(throws: MQTTError.self) {
            _ = try client.publish(topic: "t", payload: [], qos: 1, retain: false)
        }
    }

    @Test("a refused TCP connection is a tcp error")
    func refusedConnection() throws {
        let port = try TestBroker.freePort()
        let client = try MQTTClient(clientId: "refused")
        let error = #expect(throws: MQTTError.self) {
            try client.connect(host: "127.0.0.1", port: port, keepaliveSeconds: 10, timeoutMs: 3000)
        }
        #expect(error?.code == .tcp)
    }

    @Test(
        "MQTT 5 reason codes have the library's names and map to codes",
        arguments: [
            (0x86, MQTTError.Code.auth, "Bad User Name or Password"),
            (0x87, MQTTError.Code.auth, "Not authorized"),
            (0x88, MQTTError.Code.serverUnavailable, "Server unavailable"),
            (0x84, MQTTError.Code.protocol, "Unsupported Protocol Version"),
        ])
    func connackMapping(reasonCode: Int, code: MQTTError.Code, text: String) {
        let error = MQTTError.connectRefused(reasonCode: reasonCode, broker: "b:1883")
        #expect(error.code == code)
        #expect(error.reasonCode == reasonCode)
        #expect(error.message.contains(text))
    }

    @Test("0x87 on PUBACK is an ACL refusal, not a credentials problem")
    func pubackNotAuthorized() {
        #expect(MQTTError.operationCode(0x87) == .notAuthorized)
        #expect(MQTTError.operationCode(0x97) == .serverUnavailable)
    }
}
