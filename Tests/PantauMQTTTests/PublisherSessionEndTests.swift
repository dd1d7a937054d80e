import PantauCore
import Testing

@testable import PantauMQTT

@Suite("Publisher state machine: a session ended on purpose")
struct PublisherSessionEndTests {
    private let second: UInt64 = 1_000_000_000

    @Test("the window goes back in order and the next broker is tried at once, without a backoff wait")
    func sessionEnded() {
        var m = PublisherMachine(
            brokerCount: 2, window: 3, backoff: ReconnectBackoff(minSeconds: 0.5, maxSeconds: 5),
            connectTimeoutNanos: 10 * second)
        _ = m.tick(now: 0, jitter: 0)
        _ = m.connack(reasonCode: 0, now: 0, jitter: 0)
        m.sent(seq: 12, mid: 7, topic: "t")
        m.sent(seq: 10, mid: 5, topic: "t")
        m.sentUntracked(mid: 9)
        #expect(m.sessionEnded(now: 50 * second) == [.dropClient, .release([10, 12])])
        #expect(m.phase == .waiting(until: 50 * second) && m.inFlight.isEmpty && m.untracked.isEmpty)
        #expect(m.tick(now: 50 * second, jitter: 0) == [.connect(broker: 1)])
        // Only a connected session can end: a second call changes nothing.
        #expect(m.sessionEnded(now: 51 * second).isEmpty && m.phase == .connecting(deadline: 60 * second))
    }
}
