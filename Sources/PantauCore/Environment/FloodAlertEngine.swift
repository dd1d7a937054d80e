extension SiagaLevel {
    /// The BPBD name of the level: normal, waspada, siaga, awas.
    public var name: String {
        switch self {
        case .siaga4: return "normal"
        case .siaga3: return "waspada"
        case .siaga2: return "siaga"
        case .siaga1: return "awas"
        }
    }

    /// Siaga 3, 2, 1: the levels that have a threshold, least dangerous first.
    static let alerting: [SiagaLevel] = [.siaga3, .siaga2, .siaga1]
}

/// What a flood alert says now; the body of the retained alert message. Codable so it survives a restart.
public struct FloodAlertStatus: Sendable, Hashable, Codable {
    public var level: SiagaLevel
    /// When the current level was declared (nil before the first declaration).
    public var since: UnixMillis?
    /// The last good water level, in the point's unit (after the distance conversion).
    public var value: Double?
    public var valueAt: UnixMillis?
    /// True while no good reading has arrived for longer than the engine's `staleAfter`.
    public var stale: Bool
    public var rateOfRiseActive: Bool
    /// Rise over the last `rateOfRisePeriod` (last value minus the lowest value in the period).
    public var risePerPeriod: Double?

    public init(
        level: SiagaLevel = .siaga4, since: UnixMillis? = nil, value: Double? = nil, valueAt: UnixMillis? = nil,
        stale: Bool = false, rateOfRiseActive: Bool = false, risePerPeriod: Double? = nil
    ) {
        self.level = level
        self.since = since
        self.value = value
        self.valueAt = valueAt
        self.stale = stale
        self.rateOfRiseActive = rateOfRiseActive
        self.risePerPeriod = risePerPeriod
    }
}

extension SiagaLevel: Codable {}

/// The flood alert state machine of one water-level point. Transitions return actions; no clock is read.
///
/// - Up: a level more dangerous than the current one is declared once the value has stayed at or above its
///   threshold for `minimumDwell`; when several are held that long (a fast rise), the most dangerous one wins.
/// - Down: the level steps down once the value has stayed below `threshold - hysteresis` of the current level
///   for `minimumDwell`, to the least dangerous level whose own condition has held that long.
/// - Rate of rise: active while last value − lowest value in the last `rateOfRisePeriod` ≥ `rateOfRise`.
/// - Stale: no good reading (device errors, out-of-range values or silence) for longer than `staleAfter`. The
///   level is held (a dead sensor never lowers an alert), dwell timers restart when good data returns.
public struct FloodAlertEngine: Sendable {
    /// What the gateway does after a transition.
    public enum Action: Sendable, Hashable {
        case levelChanged(from: SiagaLevel, to: SiagaLevel, value: Double, at: UnixMillis)
        case rateOfRise(active: Bool, risePerPeriod: Double, at: UnixMillis)
        /// Poll the device at this interval from now on (from `FloodAlertConfig.pollIntervals`).
        case pollInterval(Interval)
        /// The sensor went stale (true) or delivers good readings again (false).
        case sensorStale(Bool, at: UnixMillis)
    }

    public let config: FloodAlertConfig
    public let devicePollInterval: Interval
    public let staleAfter: Interval
    public private(set) var status: FloodAlertStatus
    /// The poll interval the current level asks for.
    public private(set) var pollInterval: Interval

    /// What the engine remembers besides its status: the dwell timers and the level history behind the rate of
    /// rise. Persisted with the status, so a restart continues a dwell or a rate-of-rise alert exactly.
    public struct Memory: Sendable, Hashable, Codable {
        /// One good level in the rate-of-rise history.
        public struct Sample: Sendable, Hashable, Codable {
            public var at: UnixMillis
            public var value: Double
        }

        public var aboveSince: [SiagaLevel: UnixMillis] = [:]
        public var belowSince: [SiagaLevel: UnixMillis] = [:]
        /// The levels of the last `rateOfRisePeriod` that can still be its lowest: ascending in time and in value
        /// (a sample above a later one never is the minimum again), at most `historyLimit` of them.
        public var recent: [Sample] = []
        public var lastGoodAt: UnixMillis?
        public var firstSeenAt: UnixMillis?

        public init() {}
    }

    /// The bound of the rate-of-rise history; beyond it the oldest candidates go first (a rise is then measured
    /// from a later, higher low, which errs towards a smaller rise only for a river rising without pause).
    public static let historyLimit = 4096

    public private(set) var memory = Memory()

    /// - Parameters:
    ///   - status: a persisted status to resume from (its level is kept until the data says otherwise).
    ///   - memory: the persisted dwell timers and level history that went with that status.
    public init(
        config: FloodAlertConfig, devicePollInterval: Interval, staleAfter: Interval,
        status: FloodAlertStatus = FloodAlertStatus(), memory: Memory? = nil
    ) {
        self.config = config
        self.devicePollInterval = devicePollInterval
        self.staleAfter = staleAfter
        self.status = status
        self.pollInterval = config.pollIntervals[status.level] ?? devicePollInterval
        if let memory {
            self.memory = memory
        } else {
            self.memory.lastGoodAt = status.stale ? nil : status.valueAt
        }
    }

    private var aboveSince: [SiagaLevel: UnixMillis] {
        get { memory.aboveSince }
        set { memory.aboveSince = newValue }
    }
    private var belowSince: [SiagaLevel: UnixMillis] {
        get { memory.belowSince }
        set { memory.belowSince = newValue }
    }
    private var lastGoodAt: UnixMillis? {
        get { memory.lastGoodAt }
        set { memory.lastGoodAt = newValue }
    }
    private var firstSeenAt: UnixMillis? {
        get { memory.firstSeenAt }
        set { memory.firstSeenAt = newValue }
    }

    /// The threshold for entering a level (Siaga 4 has none).
    public func threshold(_ level: SiagaLevel) -> Double? {
        switch level {
        case .siaga4: return nil
        case .siaga3: return config.siaga3
        case .siaga2: return config.siaga2
        case .siaga1: return config.siaga1
        }
    }

    /// The water level a reading gives: the value, or `mountingHeight - distance` for a distance sensor.
    public func level(of value: Double) -> Double {
        config.mountingHeight.map { $0 - value } ?? value
    }

    /// Feeds one reading of the configured point (others are ignored).
    public mutating func ingest(_ reading: Reading) -> [Action] {
        guard reading.point == config.point else { return [] }
        let t = reading.acquiredAt
        if firstSeenAt == nil { firstSeenAt = t }
        guard reading.quality == .good, let raw = reading.value?.numeric, raw.isFinite else {
            return advance(to: t)
        }
        if let lastGoodAt, t <= lastGoodAt { return [] }
        var actions: [Action] = []
        if status.stale {
            status.stale = false
            actions.append(.sensorStale(false, at: t))
        }
        let value = level(of: raw)
        lastGoodAt = t
        status.value = value
        status.valueAt = t
        track(value, at: t)
        if let next = declaredLevel(at: t), next != status.level {
            actions.append(.levelChanged(from: status.level, to: next, value: value, at: t))
            status.level = next
            status.since = t
            let interval = config.pollIntervals[next] ?? devicePollInterval
            if interval != pollInterval {
                pollInterval = interval
                actions.append(.pollInterval(interval))
            }
        }
        actions += updateRateOfRise(value, at: t)
        return actions
    }

    /// Lets time pass without a good reading: flags the sensor stale once `staleAfter` has gone by.
    public mutating func advance(to now: UnixMillis) -> [Action] {
        if firstSeenAt == nil { firstSeenAt = now }
        guard !status.stale, let since = lastGoodAt ?? firstSeenAt, now - since > staleAfter.milliseconds else {
            return []
        }
        status.stale = true
        aboveSince = [:]
        belowSince = [:]
        memory.recent = []
        return [.sensorStale(true, at: now)]
    }

    private mutating func track(_ value: Double, at t: UnixMillis) {
        for level in SiagaLevel.alerting {
            let entry = threshold(level)!
            if value >= entry { aboveSince[level] = aboveSince[level] ?? t } else { aboveSince[level] = nil }
            if value < entry - config.hysteresis {
                belowSince[level] = belowSince[level] ?? t
            } else {
                belowSince[level] = nil
            }
        }
    }

    private func held(_ since: UnixMillis?, at t: UnixMillis) -> Bool {
        guard let since else { return false }
        return t - since >= config.minimumDwell.milliseconds
    }

    private func declaredLevel(at t: UnixMillis) -> SiagaLevel? {
        let current = status.level
        if let up = SiagaLevel.alerting.reversed().first(where: { $0 > current && held(aboveSince[$0], at: t) }) {
            return up
        }
        // Stepping down to N needs the value below (threshold − hysteresis) of the level just above N.
        let candidates: [(to: SiagaLevel, above: SiagaLevel)] = [
            (.siaga4, .siaga3), (.siaga3, .siaga2), (.siaga2, .siaga1),
        ]
        return candidates.first { $0.to < current && held(belowSince[$0.above], at: t) }?.to
    }

    private mutating func updateRateOfRise(_ value: Double, at t: UnixMillis) -> [Action] {
        guard let limit = config.rateOfRise else { return [] }
        // A sliding-window minimum: drop what the period left behind and every sample not below the new one.
        var recent = memory.recent
        let cutoff = t - config.rateOfRisePeriod.milliseconds
        if let keep = recent.firstIndex(where: { $0.at >= cutoff }) {
            recent.removeFirst(keep)
        } else {
            recent.removeAll()
        }
        while let last = recent.last, last.value >= value { recent.removeLast() }
        recent.append(Memory.Sample(at: t, value: value))
        if recent.count > Self.historyLimit { recent.removeFirst(recent.count - Self.historyLimit) }
        memory.recent = recent
        let rise = value - (recent.first?.value ?? value)
        status.risePerPeriod = rise
        let active = rise >= limit
        guard active != status.rateOfRiseActive else { return [] }
        status.rateOfRiseActive = active
        return [.rateOfRise(active: active, risePerPeriod: rise, at: t)]
    }
}

/// Debounces a float switch (a boolean point): a new state is declared only after it has been read in `samples`
/// consecutive good readings spanning at least `dwell`.
public struct FloatSwitchDebouncer: Sendable {
    public let samples: Int
    public let dwell: Interval
    /// The declared state; nil until the first state has been held long enough.
    public private(set) var state: Bool?
    private var candidate: Bool?
    private var candidateSince: UnixMillis = 0
    private var candidateCount = 0

    public init(samples: Int, dwell: Interval = .seconds(0)) {
        self.samples = max(1, samples)
        self.dwell = dwell
    }

    /// Returns the new declared state when it changes; non-good or non-boolean readings restart the count.
    public mutating func ingest(_ reading: Reading) -> Bool? {
        guard reading.quality == .good, let numeric = reading.value?.numeric else {
            candidate = nil
            candidateCount = 0
            return nil
        }
        let value = numeric != 0
        if value != candidate {
            candidate = value
            candidateSince = reading.acquiredAt
            candidateCount = 0
        }
        candidateCount += 1
        guard value != state, candidateCount >= samples, reading.acquiredAt - candidateSince >= dwell.milliseconds
        else { return nil }
        state = value
        return value
    }

    /// The debouncer with its dwell start moved by `d` milliseconds: the gateway's timeline moved (a clock
    /// synchronisation or step, issue 14), so the time a candidate state has held stays the time that passed.
    public func moved(by d: Int64) -> FloatSwitchDebouncer {
        var m = self
        m.candidateSince += d
        return m
    }
}
