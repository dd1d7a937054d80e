/// Reconnect waits: exponential with full jitter, between a floor and a ceiling.
///
/// The n-th consecutive failure waits a uniformly random time in `[minSeconds, min(maxSeconds, minSeconds·2ⁿ)]`,
/// so a fleet of gateways that lost the same broker does not come back in lock step (libmosquitto's own
/// reconnect has no jitter).
public struct ReconnectBackoff: Sendable, Hashable {
    public let minSeconds: Double
    public let maxSeconds: Double
    /// Consecutive failures since the last success.
    public private(set) var failures = 0
    /// The longest wait the next call to `nextDelay` can return.
    public private(set) var ceiling: Double

    /// `minSeconds` is at least 1 ms; a `maxSeconds` below it is raised to it.
    public init(minSeconds: Double, maxSeconds: Double) {
        self.minSeconds = max(minSeconds, 0.001)
        self.maxSeconds = max(maxSeconds, self.minSeconds)
        self.ceiling = self.minSeconds
    }

    /// The wait before the next attempt, in seconds, jittered by `random`; the ceiling then doubles.
    public mutating func nextDelay<Source: RandomNumberGenerator>(using random: inout Source) -> Double {
        nextDelay(jitter: Double.random(in: 0...1, using: &random))
    }

    /// The wait before the next attempt: `jitter` (0…1) picks the point between `minSeconds` and the ceiling,
    /// which then doubles up to `maxSeconds`.
    public mutating func nextDelay(jitter: Double) -> Double {
        let delay = minSeconds + (ceiling - minSeconds) * min(max(jitter, 0), 1)
        failures += 1
        ceiling = min(maxSeconds, ceiling * 2)
        return delay
    }

    /// After a successful connection: the next failure waits about `minSeconds` again.
    public mutating func reset() {
        failures = 0
        ceiling = minSeconds
    }
}
