import Foundation
import PantauMQTT

/// A second MQTT client that records what the broker delivers on a filter; the test pumps it while it waits.
final class TestSubscriber {
    let client: MQTTClient
    private(set) var received: [MQTTMessage] = []

    init(host: String, port: Int, filter: String, retainAsPublished: Bool = false) throws {
        client = try MQTTClient(clientId: "watch-\(UUID().uuidString.prefix(8))")
        try client.connect(host: host, port: port, keepaliveSeconds: 10, timeoutMs: 5000)
        let mid = try client.subscribe(filter, qos: 1, retainAsPublished: retainAsPublished)
        var granted = false
        pump(until: 5) { events in
            granted = granted || events.contains { if case .subscribed(mid, _) = $0 { true } else { false } }
            return granted
        }
        guard granted else { throw MQTTError(code: .timeout, message: "no SUBACK for \(filter)") }
    }

    /// Pumps this subscriber (and runs `condition`) until the condition holds or `seconds` pass.
    @discardableResult
    func pump(until seconds: Double, _ condition: ([MQTTEvent]) -> Bool = { _ in false }) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            client.loop(timeoutMs: 10)
            let events = client.takeEvents()
            received += events.compactMap { if case .message(let message) = $0 { message } else { nil } }
            if condition(events) { return true }
        }
        return false
    }

    func messages(on topic: String) -> [MQTTMessage] { received.filter { $0.topic == topic } }
}

/// Waits (pumping the subscribers) until `condition` holds; false when `seconds` pass first.
func waitUntil(_ seconds: Double, pumping subscribers: [TestSubscriber] = [], _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        if subscribers.isEmpty { usleep(10_000) }
        for subscriber in subscribers { subscriber.pump(until: 0.01) }
    }
    return condition()
}
