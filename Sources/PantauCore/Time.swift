#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Milliseconds since the Unix epoch (UTC). Every reading carries its acquisition time in this unit.
public typealias UnixMillis = Int64

/// The source of time for everything that schedules, windows or debounces, so tests can inject their own.
public protocol GatewayClock: Sendable {
    /// Wall-clock time, for timestamps and window alignment.
    func now() -> UnixMillis
    /// A monotonic reading in nanoseconds, for intervals, timeouts and backoff.
    func monotonicNanos() -> UInt64
}

/// The real clocks of the system: `CLOCK_REALTIME` and `CLOCK_MONOTONIC`.
public struct SystemClock: GatewayClock {
    public init() {}

    public func now() -> UnixMillis {
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

/// A duration in milliseconds, parsed from `"500ms"`, `"10s"`, `"5m"`, `"1h"`, `"7d"` or a bare number of seconds.
public struct Interval: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> Interval { Interval(milliseconds: s * 1000) }
    public static func minutes(_ m: Int64) -> Interval { Interval(milliseconds: m * 60_000) }
    public static func < (a: Interval, b: Interval) -> Bool { a.milliseconds < b.milliseconds }

    /// Parses the config notation; nil when the text is not a duration.
    public init?(parsing text: String) {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let trimmed = text.trimmedWhitespace()
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = String(trimmed.dropLast(suffix.count))
            // "5ms" also ends in "s": only accept when the rest is a number.
            if let value = Double(number), value >= 0 {
                self.milliseconds = Int64((value * Double(factor)).rounded())
                return
            }
        }
        if let value = Double(trimmed), value >= 0 {
            self.milliseconds = Int64((value * 1000).rounded())
            return
        }
        return nil
    }

    public var description: String {
        if milliseconds % 86_400_000 == 0 && milliseconds > 0 { return "\(milliseconds / 86_400_000)d" }
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}

extension String {
    /// The string without leading and trailing blanks and line breaks.
    public func trimmedWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
