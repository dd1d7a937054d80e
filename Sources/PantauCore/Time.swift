import PantauPlatform

/// Milliseconds since the Unix epoch (UTC). Every reading carries its acquisition time in this unit.
public typealias UnixMillis = Int64

/// The source of time for everything that schedules, windows or debounces, so tests can inject their own.
public protocol GatewayClock: Sendable {
    /// Wall-clock time, for timestamps and window alignment.
    func now() -> UnixMillis
    /// A monotonic reading in nanoseconds, for intervals, timeouts and backoff.
    func monotonicNanos() -> UInt64
    /// The clock's state (synchronised, boottime, boot id). A test clock that does not say is a synchronised one.
    func clockSample() -> ClockSample
    /// The clock's state without asking the system for its synchronisation again: the wall time and boottime now,
    /// the rest as in `last` (the hot path's sample; `clockSample()` runs once a second).
    func quickSample(after last: ClockSample) -> ClockSample
}

extension GatewayClock {
    public func clockSample() -> ClockSample {
        let now = now()
        return ClockSample(
            wall: now, boottimeMs: Int64(monotonicNanos() / 1_000_000), synced: true, bootId: "test-boot")
    }

    /// A clock whose full sample is cheap samples it in full.
    public func quickSample(after last: ClockSample) -> ClockSample { clockSample() }
}

extension SystemClock: GatewayClock {}

/// A duration in milliseconds, parsed from `"500ms"`, `"10s"`, `"5m"`, `"1h"`, `"7d"` or a bare number of seconds.
public struct Interval: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> Interval { Interval(milliseconds: s * 1000) }
    public static func minutes(_ m: Int64) -> Interval { Interval(milliseconds: m * 60_000) }
    public static func < (a: Interval, b: Interval) -> Bool { a.milliseconds < b.milliseconds }

    /// The longest duration a configuration may give (3650 days). Far beyond any real poll, window or age bound,
    /// and small enough that nanoseconds and sums of a few such durations still fit in 64 bits.
    public static let maximum = Interval(milliseconds: 3650 * 86_400_000)

    /// Why a text is not an acceptable duration.
    public enum ParseError: Error, Sendable, Hashable {
        /// Not a number with one of the units ms, s, m, h, d (includes `nan`).
        case notADuration
        case negative
        /// Beyond `Interval.maximum` (includes `inf` and `1e100ms`).
        case tooLong
    }

    /// Parses the config notation, refusing what an `Interval` cannot hold instead of trapping.
    public static func parse(_ text: String) -> Result<Interval, ParseError> {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let trimmed = text.trimmedWhitespace()
        var number: Double?
        var factor: Double = 1000
        for (suffix, f) in units where trimmed.hasSuffix(suffix) {
            // "5ms" also ends in "s": only accept when the rest is a number.
            if let value = Double(String(trimmed.dropLast(suffix.count))) {
                number = value
                factor = f
                break
            }
        }
        if number == nil { number = Double(trimmed) }
        guard let value = number, !value.isNaN else { return .failure(.notADuration) }
        guard value >= 0 else { return .failure(.negative) }
        let millis = (value * factor).rounded()
        guard millis <= Double(maximum.milliseconds), let exact = Int64(exactly: millis) else {
            return .failure(.tooLong)
        }
        return .success(Interval(milliseconds: exact))
    }

    /// Parses the config notation; nil when the text is not a duration or is out of range.
    public init?(parsing text: String) {
        guard case .success(let value) = Interval.parse(text) else { return nil }
        self = value
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
