/// Running statistics of one window: Welford's mean and sum of squared deviations, so a long window of large
/// values keeps its precision.
public struct WindowStatistics: Sendable, Hashable, Codable {
    public var count: Int = 0
    public var min: Double = 0
    public var max: Double = 0
    public var mean: Double = 0
    /// Sum of squared deviations from the mean (Welford's M2).
    public var m2: Double = 0
    public var first: Double = 0
    public var firstAt: UnixMillis = 0
    public var last: Double = 0
    public var lastAt: UnixMillis = 0

    public init() {}

    /// Adds one sample. Out-of-order samples are fine: first and last follow the acquisition time, not arrival.
    public mutating func add(_ value: Double, at time: UnixMillis) {
        if count == 0 {
            min = value
            max = value
            first = value
            firstAt = time
            last = value
            lastAt = time
        } else {
            min = Swift.min(min, value)
            max = Swift.max(max, value)
            if time < firstAt {
                first = value
                firstAt = time
            }
            if time >= lastAt {
                last = value
                lastAt = time
            }
        }
        count += 1
        let delta = value - mean
        mean += delta / Double(count)
        m2 += delta * (value - mean)
    }

    /// Population standard deviation (divides by n, not n − 1): the window is the whole population described.
    public var standardDeviation: Double { count > 0 ? (m2 / Double(count)).squareRoot() : 0 }
}

/// One closed window of one point of one device.
public struct WindowResult: Sendable, Hashable {
    public var device: String
    public var point: String
    public var quantity: String
    public var unit: String
    public var window: Interval
    /// Inclusive start, aligned to a multiple of the window length since the epoch (UTC wall clock).
    public var start: UnixMillis
    /// Exclusive end.
    public var end: UnixMillis
    public var statistics: WindowStatistics
    /// Samples a full window holds at the poll interval in force over it: the window length divided by the
    /// interval, integrated piecewise when a flood level changed the interval inside the window.
    public var expected: Double
    /// count / expected, capped at 1 (poll jitter can fit one extra sample into a window).
    public var coverage: Double
    /// Good readings of this point dropped since the previous result because their window was already emitted.
    public var lateDropped: Int

    public init(
        device: String, point: String, quantity: String, unit: String, window: Interval, start: UnixMillis,
        end: UnixMillis, statistics: WindowStatistics, expected: Double, coverage: Double, lateDropped: Int
    ) {
        self.device = device
        self.point = point
        self.quantity = quantity
        self.unit = unit
        self.window = window
        self.start = start
        self.end = end
        self.statistics = statistics
        self.expected = expected
        self.coverage = coverage
        self.lateDropped = lateDropped
    }
}

/// Tumbling windows per device and point, aligned to wall-clock boundaries (a 15 min window starts at :00, :15,
/// :30, :45 UTC). Only good numeric readings count.
///
/// Lateness rule: time advances to the latest of `advance(to:)` and every ingested reading's `acquiredAt`
/// (the watermark). A window `[start, end)` is emitted once the watermark reaches `end + grace`. Until then a
/// reading for it is accepted, in any order. Afterwards a reading for it is late: dropped from the aggregates,
/// counted in `lateReadings` and in the next result's `lateDropped` for that point and window length.
/// A window that received no good reading is not emitted.
public struct WindowAggregator: Sendable {
    /// The persistent part: open windows, watermark, late counters. Codable for the journal's meta table.
    public struct State: Sendable, Hashable, Codable {
        public var watermark: UnixMillis
        public var open: [OpenWindow]
        public var lateByKey: [SeriesKey: Int]
        public var lateReadings: Int
        /// Per device, the poll intervals set since the oldest open window (ascending); absent in older saves.
        public var intervalChanges: [String: [IntervalChange]]?
    }

    /// From `at` on, the device is polled every `interval` (until the next change).
    public struct IntervalChange: Sendable, Hashable, Codable {
        public var at: UnixMillis
        public var intervalMillis: Int64
    }

    /// Identifies one series: a device's point at one window length.
    public struct SeriesKey: Sendable, Hashable, Codable {
        public var device: String
        public var point: String
        public var windowMillis: Int64
    }

    /// A window still collecting samples.
    public struct OpenWindow: Sendable, Hashable, Codable {
        public var key: SeriesKey
        public var quantity: String
        public var unit: String
        public var start: UnixMillis
        public var statistics: WindowStatistics
    }

    public let windows: [Interval]
    public let grace: Interval
    private let expectedInterval: @Sendable (String) -> Interval
    private var state = State(watermark: .min, open: [], lateByKey: [:], lateReadings: 0, intervalChanges: nil)
    private var openIndex: [WindowID: Int] = [:]

    private struct WindowID: Hashable {
        var key: SeriesKey
        var start: UnixMillis

        /// Equality compares every field; the hash leaves out the device, which is the same for every series of
        /// the per-device aggregators the gateway keeps: one string fewer to hash per reading and window.
        func hash(into hasher: inout Hasher) {
            hasher.combine(key.point)
            hasher.combine(key.windowMillis)
            hasher.combine(start)
        }
    }

    /// - Parameters:
    ///   - windows: window lengths (zero or negative lengths are ignored).
    ///   - grace: how long after a window's end a late reading is still accepted.
    ///   - expectedInterval: the poll interval of a device, for coverage.
    public init(
        windows: [Interval], grace: Interval = .seconds(5),
        expectedInterval: @escaping @Sendable (String) -> Interval
    ) {
        self.windows = Array(Set(windows.filter { $0.milliseconds > 0 })).sorted()
        self.grace = grace
        self.expectedInterval = expectedInterval
    }

    /// All good readings that arrived after their window was emitted, since start (or restore).
    public var lateReadings: Int { state.lateReadings }

    /// Adds a reading to each window length and returns the windows that closed because time moved on.
    public mutating func ingest(_ reading: Reading) -> [WindowResult] {
        let closed = advance(to: reading.acquiredAt)
        guard reading.quality == .good, let value = reading.value?.numeric, value.isFinite else { return closed }
        let t = reading.acquiredAt
        for window in windows {
            let length = window.milliseconds
            let start = Self.alignedStart(t, length)
            let key = SeriesKey(device: reading.device, point: reading.point, windowMillis: length)
            // advance(to:) already emitted every window whose end plus grace the watermark has reached.
            if start + length + grace.milliseconds <= state.watermark {
                state.lateByKey[key, default: 0] += 1
                state.lateReadings += 1
                continue
            }
            let id = WindowID(key: key, start: start)
            if let i = openIndex[id] {
                state.open[i].statistics.add(value, at: t)
            } else {
                var stats = WindowStatistics()
                stats.add(value, at: t)
                openIndex[id] = state.open.count
                state.open.append(
                    OpenWindow(
                        key: key, quantity: reading.quantity, unit: reading.unit, start: start, statistics: stats))
            }
        }
        return closed
    }

    /// Moves time forward and returns the windows whose end plus grace has passed, oldest end first.
    public mutating func advance(to now: UnixMillis) -> [WindowResult] {
        guard now > state.watermark else { return [] }
        state.watermark = now
        // Most calls close nothing (every poll calls this): look before copying the open windows.
        let graceMillis = grace.milliseconds
        guard state.open.contains(where: { $0.start + $0.key.windowMillis + graceMillis <= now }) else { return [] }
        var closed: [WindowResult] = []
        var remaining: [OpenWindow] = []
        for w in state.open {
            if w.start + w.key.windowMillis + grace.milliseconds <= now {
                closed.append(result(of: w))
            } else {
                remaining.append(w)
            }
        }
        guard !closed.isEmpty else { return [] }
        state.open = remaining
        rebuildIndex()
        pruneIntervalChanges()
        return closed.sorted { a, b in
            if a.end != b.end { return a.end < b.end }
            if a.window != b.window { return a.window < b.window }
            if a.device != b.device { return a.device < b.device }
            return a.point < b.point
        }
    }

    /// Records that `device` is polled every `interval` from `at` on (a flood level shortened or restored it), so
    /// the coverage of the windows around it expects the samples of the interval really in force.
    public mutating func pollIntervalChanged(device: String, to interval: Interval, at time: UnixMillis) {
        var changes = state.intervalChanges?[device] ?? []
        changes.removeAll { $0.at >= time }
        changes.append(IntervalChange(at: time, intervalMillis: max(1, interval.milliseconds)))
        state.intervalChanges = state.intervalChanges ?? [:]
        state.intervalChanges?[device] = changes
    }

    /// Samples expected over `[start, end)`: the integral of 1 / interval, starting from the configured interval.
    func expectedSamples(device: String, from start: UnixMillis, to end: UnixMillis) -> Double {
        var interval = max(1, expectedInterval(device).milliseconds)
        var t = start
        var expected = 0.0
        for change in state.intervalChanges?[device] ?? [] {
            if change.at <= start {
                interval = change.intervalMillis
                continue
            }
            if change.at >= end { break }
            expected += Double(change.at - t) / Double(interval)
            t = change.at
            interval = change.intervalMillis
        }
        return expected + Double(end - t) / Double(interval)
    }

    /// Forgets interval changes no open window can need: all but the last one before the oldest open start.
    private mutating func pruneIntervalChanges() {
        guard var all = state.intervalChanges else { return }
        let oldest = state.open.map(\.start).min() ?? state.watermark
        for (device, changes) in all {
            let before = changes.lastIndex { $0.at <= oldest }
            if let before, before > 0 { all[device] = Array(changes[before...]) }
        }
        state.intervalChanges = all
    }

    /// The state to persist; `restore(_:)` on a fresh aggregator continues where this one stopped.
    public func snapshot() -> State { state }

    /// Replaces the state with a persisted one. Windows of lengths no longer configured are dropped.
    public mutating func restore(_ saved: State) {
        let lengths = Set(windows.map(\.milliseconds))
        state = saved
        state.open = saved.open.filter { lengths.contains($0.key.windowMillis) }
        rebuildIndex()
    }

    private mutating func result(of w: OpenWindow) -> WindowResult {
        let length = w.key.windowMillis
        let expected = expectedSamples(device: w.key.device, from: w.start, to: w.start + length)
        let late = state.lateByKey.removeValue(forKey: w.key) ?? 0
        return WindowResult(
            device: w.key.device, point: w.key.point, quantity: w.quantity, unit: w.unit,
            window: Interval(milliseconds: length), start: w.start, end: w.start + length, statistics: w.statistics,
            expected: expected, coverage: min(1, Double(w.statistics.count) / expected), lateDropped: late)
    }

    private mutating func rebuildIndex() {
        openIndex = [:]
        for (i, w) in state.open.enumerated() { openIndex[WindowID(key: w.key, start: w.start)] = i }
    }

    /// Floor to a multiple of the length, correct for times before the epoch too.
    static func alignedStart(_ t: UnixMillis, _ length: Int64) -> UnixMillis {
        let r = t % length
        return r >= 0 ? t - r : t - r - length
    }
}
