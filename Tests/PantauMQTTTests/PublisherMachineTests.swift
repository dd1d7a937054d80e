import PantauCore
import Testing

@testable import PantauMQTT

private let second: UInt64 = 1_000_000_000

private func machine(brokers: Int = 2, window: Int = 3) -> PublisherMachine {
    PublisherMachine(
        brokerCount: brokers, window: window, backoff: ReconnectBackoff(minSeconds: 0.5, maxSeconds: 5),
        connectTimeoutNanos: 10 * second)
}

@Suite("Publisher state machine, without I/O")
struct PublisherMachineTests {
    @Test("first tick connects; CONNACK success announces retained state and fills the whole window")
    func connectAndFill() {
        var m = machine()
        #expect(m.tick(now: 0, jitter: 0) == [.connect(broker: 0)])
        #expect(m.phase == .connecting(deadline: 10 * second))
        #expect(m.tick(now: second, jitter: 0).isEmpty)
        #expect(m.connack(reasonCode: 0, now: second, jitter: 0) == [.announce, .fill(room: 3)])
        #expect(m.isConnected && m.nextDeadline == nil)
    }

    @Test("PUBACK success acknowledges and refills; a full window asks for nothing; new records fill the room")
    func window() {
        var m = machine()
        _ = m.tick(now: 0, jitter: 0)
        _ = m.connack(reasonCode: 0, now: 0, jitter: 0)
        for (mid, seq) in [(Int32(1), Int64(10)), (2, 11), (3, 12)] { m.sent(seq: seq, mid: mid, topic: "t") }
        #expect(m.room == 0 && m.woken().isEmpty)
        #expect(m.puback(mid: 2, reasonCode: 0, now: 0).actions == [.acknowledge([11]), .fill(room: 1)])
        #expect(m.puback(mid: 2, reasonCode: 0, now: 0).actions.isEmpty)
        #expect(m.woken() == [.fill(room: 1)])
    }

    @Test("a lost connection releases the window in order and waits a jittered backoff for the same broker")
    func connectionLost() {
        var m = machine()
        _ = m.tick(now: 0, jitter: 0)
        _ = m.connack(reasonCode: 0, now: 0, jitter: 0)
        m.sent(seq: 12, mid: 7, topic: "t")
        m.sent(seq: 10, mid: 5, topic: "t")
        #expect(m.connectionLost(now: 100 * second, jitter: 1) == [.dropClient, .release([10, 12])])
        #expect(m.phase == .waiting(until: 100 * second + second / 2))
        #expect(m.brokerIndex == 0)
        #expect(m.tick(now: 100 * second + second / 2, jitter: 0) == [.connect(broker: 0)])
    }

    @Test("refused or timed-out attempts rotate brokers; the wait doubles up to reconnect_max, then resets")
    func failover() {
        var m = machine(brokers: 2)
        var now: UInt64 = 0
        var waits: [UInt64] = []
        for _ in 0..<6 {
            #expect(m.tick(now: now, jitter: 1) == [.connect(broker: m.brokerIndex)])
            _ = m.connack(reasonCode: 0x87, now: now, jitter: 1)
            guard case .waiting(let until) = m.phase else {
                Issue.record("not waiting")
                return
            }
            waits.append(until - now)
            now = until
        }
        #expect(waits == [1, 2, 4, 8, 10, 10].map { $0 * second / 2 })
        #expect(m.brokerIndex == 0)
        _ = m.tick(now: now, jitter: 1)
        // No CONNACK within the connect timeout: a failed attempt, next broker.
        #expect(m.tick(now: now + 11 * second, jitter: 1) == [.dropClient])
        #expect(m.brokerIndex == 1)
        _ = m.tick(now: now + 30 * second, jitter: 1)
        _ = m.connack(reasonCode: 0, now: now + 30 * second, jitter: 1)
        _ = m.connectionLost(now: now + 31 * second, jitter: 1)
        #expect(m.phase == .waiting(until: now + 31 * second + second / 2))
    }

    @Test("a refused record is held back with a growing delay, then released and refilled when due")
    func refusal() {
        var m = machine()
        _ = m.tick(now: 0, jitter: 0)
        _ = m.connack(reasonCode: 0, now: 0, jitter: 0)
        m.sent(seq: 4, mid: 1, topic: "denied")
        let refused = m.puback(mid: 1, reasonCode: 0x87, now: 0)
        #expect(refused.refused == PublisherMachine.InFlight(seq: 4, topic: "denied"))
        #expect(refused.actions == [.fill(room: 3)])
        #expect(m.nextDeadline == second / 2)
        #expect(m.tick(now: second / 4, jitter: 0).isEmpty)
        #expect(m.tick(now: second / 2, jitter: 0) == [.release([4]), .fill(room: 3)])
        m.sent(seq: 4, mid: 2, topic: "denied")
        _ = m.puback(mid: 2, reasonCode: 0x87, now: second)
        #expect(m.nextDeadline == 2 * second)
    }

    @Test("status and republished retained messages are not journal records; stop releases what is left")
    func untrackedAndStop() {
        var m = machine()
        _ = m.tick(now: 0, jitter: 0)
        _ = m.connack(reasonCode: 0, now: 0, jitter: 0)
        m.sentUntracked(mid: 1)
        #expect(m.puback(mid: 1, reasonCode: 0, now: 0).actions.isEmpty)
        m.sent(seq: 9, mid: 2, topic: "t")
        m.notPublishable(seq: 3, now: 0)
        #expect(m.stopped() == [.dropClient, .release([3, 9])])
    }
}
