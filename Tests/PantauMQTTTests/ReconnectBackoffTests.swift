import PantauCore
import Testing

@testable import PantauMQTT

/// A seeded SplitMix64, so a failing draw is reproducible.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Reconnect backoff: exponential with full jitter")
struct ReconnectBackoffTests {
    @Test("the ceiling doubles from the minimum and stops at the maximum")
    func ceilingGrowth() {
        var backoff = ReconnectBackoff(minSeconds: 0.5, maxSeconds: 5)
        var ceilings: [Double] = []
        for _ in 0..<7 {
            ceilings.append(backoff.ceiling)
            _ = backoff.nextDelay(jitter: 0)
        }
        #expect(ceilings == [0.5, 1, 2, 4, 5, 5, 5])
        #expect(backoff.failures == 7)
    }

    @Test(
        "jitter 0 waits the minimum, 1 the ceiling, 0.5 halfway",
        arguments: [
            (0.0, [1.0, 1, 1, 1, 1, 1, 1]),
            (1.0, [1.0, 2, 4, 8, 16, 30, 30]),
            (0.5, [1.0, 1.5, 2.5, 4.5, 8.5, 15.5, 15.5]),
        ])
    func jitterScale(jitter: Double, expected: [Double]) {
        var backoff = ReconnectBackoff(minSeconds: 1, maxSeconds: 30)
        #expect((0..<7).map { _ in backoff.nextDelay(jitter: jitter) } == expected)
    }

    @Test("every draw lies between the minimum and the ceiling of its attempt", arguments: [1, 7, 42, 1234, 99999])
    func jitterBounds(seed: UInt64) {
        var backoff = ReconnectBackoff(minSeconds: 0.2, maxSeconds: 10)
        var random = SeededRandom(state: seed)
        var distinct = Set<Double>()
        for _ in 0..<200 {
            let ceiling = backoff.ceiling
            let delay = backoff.nextDelay(using: &random)
            #expect(delay >= 0.2 && delay <= ceiling)
            distinct.insert(delay)
        }
        // Jitter, not a fixed schedule: a fleet must not reconnect in lock step.
        #expect(distinct.count > 150)
    }

    @Test("reset after a successful connection starts again at the minimum")
    func reset() {
        var backoff = ReconnectBackoff(minSeconds: 0.5, maxSeconds: 8)
        for _ in 0..<5 { _ = backoff.nextDelay(jitter: 1) }
        #expect(backoff.ceiling == 8)
        backoff.reset()
        #expect(backoff.failures == 0)
        #expect(backoff.ceiling == 0.5)
        #expect(backoff.nextDelay(jitter: 1) == 0.5)
    }

    @Test("a maximum below the minimum is raised to it")
    func inverted() {
        var backoff = ReconnectBackoff(minSeconds: 3, maxSeconds: 1)
        #expect(backoff.maxSeconds == 3)
        #expect(backoff.nextDelay(jitter: 1) == 3)
        #expect(backoff.nextDelay(jitter: 1) == 3)
    }
}
