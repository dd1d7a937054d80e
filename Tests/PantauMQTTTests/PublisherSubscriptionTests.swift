import PantauCore
import Testing

@testable import PantauMQTT

@Suite("Publisher state machine: a session profile's subscriptions")
struct PublisherSubscriptionTests {
    @Test("every CONNACK subscribes again before the announce: a new client starts without subscriptions")
    func subscribeOnEveryConnect() {
        var m = PublisherMachine(
            brokerCount: 1, window: 2, backoff: ReconnectBackoff(minSeconds: 0.5, maxSeconds: 5))
        m.subscriptions = ["spBv1.0/g/NCMD/e", "spBv1.0/STATE/host"]
        _ = m.tick(now: 0, jitter: 0)
        let subscribe = PublisherMachine.Action.subscribe(["spBv1.0/g/NCMD/e", "spBv1.0/STATE/host"])
        #expect(m.connack(reasonCode: 0, now: 1, jitter: 0) == [subscribe, .announce, .fill(room: 2)])
        _ = m.connectionLost(now: 2, jitter: 0)
        _ = m.tick(now: 10_000_000_000, jitter: 0)
        #expect(m.connack(reasonCode: 0, now: 10_000_000_001, jitter: 0) == [subscribe, .announce, .fill(room: 2)])
    }
}
