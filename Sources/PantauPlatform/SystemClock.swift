#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The real clocks of the system: `CLOCK_REALTIME` and `CLOCK_MONOTONIC`. `PantauCore` defines what a clock
/// is (`GatewayClock`, to which PantauCore conforms this); reading one is I/O, so it lives here.
public struct SystemClock: Sendable {
    public init() {}

    /// Milliseconds since the Unix epoch.
    public func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    public func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
