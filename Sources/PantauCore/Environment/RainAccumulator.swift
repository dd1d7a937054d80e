/// BMKG rain categories. Each band includes its lower bound and excludes its upper one, except that the top
/// band begins strictly above its bound ("ekstrem > 150"), so 150 mm/24 h is still sangat lebat and 20 mm/h lebat.
public enum RainCategory: String, Sendable, Hashable, CaseIterable, Codable {
    case none = "tidak_hujan"
    case ringan, sedang, lebat
    case sangatLebat = "sangat_lebat"
    case ekstrem

    /// Daily (mm per 24 h): < 0.5 none, ringan 0.5–20, sedang 20–50, lebat 50–100, sangat lebat 100–150,
    /// ekstrem > 150.
    public init(daily mm: Double) {
        switch mm {
        case ..<0.5: self = .none
        case ..<20: self = .ringan
        case ..<50: self = .sedang
        case ..<100: self = .lebat
        case ...150: self = .sangatLebat
        default: self = .ekstrem
        }
    }

    /// Hourly (mm/h): < 1 none, ringan 1–5, sedang 5–10, lebat 10–20, sangat lebat > 20 (no ekstrem class).
    public init(hourly mmPerHour: Double) {
        switch mmPerHour {
        case ..<1: self = .none
        case ..<5: self = .ringan
        case ..<10: self = .sedang
        case ...20: self = .lebat
        default: self = .sangatLebat
        }
    }
}

/// What happened to the counter between two readings.
public enum RainCounterEvent: String, Sendable, Hashable, Codable {
    case first, normal, wrap, reset
}

/// Rain intensity and totals at one time.
public struct RainReport: Sendable, Hashable {
    public var at: UnixMillis
    /// Start of the interval `intervalMillimetres` covers (the previous report, or the first reading).
    public var intervalStart: UnixMillis
    public var intervalMillimetres: Double
    /// Rain in the sliding last hour, which is the intensity in mm/h.
    public var lastHourMillimetres: Double
    public var last24HoursMillimetres: Double
    public var hourlyCategory: RainCategory
    public var dailyCategory: RainCategory
    /// Sensor resets seen since start (a counter drop that is not a wrap).
    public var counterResets: Int
    /// True when either category differs from the previous report's (or this is the first report): publish now.
    public var categoryChanged: Bool
}

/// Turns a tipping-bucket counter into rain amounts. Time comes from the readings and `report(now:)`.
///
/// A counter drop is a wrap when the distance forward through `counterModulus` is plausible (at most
/// `maximumRate` mm/h over the time between readings, with at least `wrapSlack` mm of slack); otherwise it is a
/// sensor reset (power cycle, clear command) and the new value is the rain counted since the reset, from zero.
/// Totals are rounded to 0.001 mm before classification so sums of 0.1 mm tips land on their band edges.
public struct RainAccumulator: Sendable {
    /// The persistent part, for a restart within the 24 h window.
    public struct State: Sendable, Hashable, Codable {
        public var lastCount: Double?
        public var lastAt: UnixMillis?
        /// Non-zero rain increments by the time of the reading that revealed them.
        public var increments: [Increment]
        public var intervalStart: UnixMillis?
        public var intervalMillimetres: Double
        public var counterResets: Int
        public var lastCategories: [RainCategory]?
    }

    /// Rain revealed by one reading.
    public struct Increment: Sendable, Hashable, Codable {
        public var at: UnixMillis
        public var millimetres: Double
    }

    public let config: RainConfig
    public let maximumRate: Double
    public let wrapSlack: Double
    private var state = State(
        lastCount: nil, lastAt: nil, increments: [], intervalStart: nil, intervalMillimetres: 0, counterResets: 0,
        lastCategories: nil)

    public init(config: RainConfig, maximumRate: Double = 300, wrapSlack: Double = 10) {
        self.config = config
        self.maximumRate = maximumRate
        self.wrapSlack = wrapSlack
    }

    /// Feeds one counter reading of the configured point; returns how the counter moved (nil when ignored).
    @discardableResult
    public mutating func ingest(_ reading: Reading) -> RainCounterEvent? {
        guard reading.point == config.point, reading.quality == .good,
            let count = reading.value?.numeric, count.isFinite
        else { return nil }
        let t = reading.acquiredAt
        if state.intervalStart == nil { state.intervalStart = t }
        guard let last = state.lastCount, let lastAt = state.lastAt else {
            state.lastCount = count
            state.lastAt = t
            return .first
        }
        guard t > lastAt else { return nil }
        let event: RainCounterEvent
        var steps = count - last
        if steps < 0 {
            let forward = count + config.counterModulus - last
            let hours = Double(t - lastAt) / 3_600_000
            if forward * config.mmPerCount <= max(wrapSlack, maximumRate * hours) {
                steps = forward
                event = .wrap
            } else {
                steps = count
                event = .reset
                state.counterResets += 1
            }
        } else {
            event = .normal
        }
        state.lastCount = count
        state.lastAt = t
        let mm = steps * config.mmPerCount
        if mm > 0 {
            state.increments.append(Increment(at: t, millimetres: mm))
            state.intervalMillimetres += mm
        }
        state.increments.removeAll { $0.at <= t - 86_400_000 }
        return event
    }

    /// Rain in `(now - length, now]`.
    public func total(over length: Interval, now: UnixMillis) -> Double {
        let sum = state.increments.reduce(0.0) { acc, inc in
            inc.at > now - length.milliseconds && inc.at <= now ? acc + inc.millimetres : acc
        }
        return sum.roundedForPayload(decimals: 3)
    }

    /// The report at `now`; starts a new interval for `intervalMillimetres`.
    public mutating func report(now: UnixMillis) -> RainReport {
        let hour = total(over: .minutes(60), now: now)
        let day = total(over: .minutes(24 * 60), now: now)
        let categories = [RainCategory(hourly: hour), RainCategory(daily: day)]
        let report = RainReport(
            at: now, intervalStart: state.intervalStart ?? now,
            intervalMillimetres: state.intervalMillimetres.roundedForPayload(decimals: 3), lastHourMillimetres: hour,
            last24HoursMillimetres: day, hourlyCategory: categories[0], dailyCategory: categories[1],
            counterResets: state.counterResets, categoryChanged: categories != state.lastCategories)
        state.lastCategories = categories
        state.intervalStart = now
        state.intervalMillimetres = 0
        return report
    }

    /// The state to persist (the lead keeps it in the journal meta).
    public func snapshot() -> State { state }
    /// Continues from a persisted state.
    public mutating func restore(_ saved: State) { state = saved }
}
