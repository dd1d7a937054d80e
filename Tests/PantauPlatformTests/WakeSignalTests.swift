import PantauPlatform
import Synchronization
import Testing

@Suite("WakeSignal: coalesced wake-ups that are never lost")
struct WakeSignalTests {
    @Test("a signal after a drain wakes the waiter again; signals before one drain wake once")
    func signalDrainSignal() {
        let wake = WakeSignal()
        #expect(!wake.wait(timeoutMs: 0))
        wake.signal()
        wake.signal()
        #expect(wake.wait(timeoutMs: 0))
        wake.drain()
        #expect(!wake.wait(timeoutMs: 0))
        wake.signal()
        #expect(wake.wait(timeoutMs: 0))
    }

    /// A producer publishes a counter and signals; the consumer drains, then reads the counter. If a signal were
    /// ever swallowed, the consumer would sleep with work pending: the 10 s wait is only a hang detector.
    @Test("under a racing producer every increment is seen without a lost wake-up")
    func racingProducer() {
        let wake = WakeSignal()
        let counter = Atomic<Int>(0)
        let total = 200_000
        let producer = OwnedThread {
            for _ in 0..<total {
                counter.add(1, ordering: .sequentiallyConsistent)
                wake.signal()
            }
        }
        var seen = 0
        var lost = false
        while seen < total {
            guard wake.wait(timeoutMs: 10_000) else {
                lost = true
                break
            }
            wake.drain()
            seen = counter.load(ordering: .sequentiallyConsistent)
        }
        producer.join()
        #expect(!lost, "a wake-up was lost with \(total - seen) increments pending")
    }
}
