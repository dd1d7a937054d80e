/// The indices due at one evaluation, each with whether it should be published now.
public struct AirQualityEvaluation: Sendable, Hashable {
    /// Nil when ISPU is not configured for the device.
    public var ispu: ISPUResult?
    public var publishISPU: Bool
    /// Nil when AQI is not configured for the device.
    public var aqi: AQIResult?
    public var publishAQI: Bool
}

/// Rolling averages of one device's pollutants, feeding ISPU and the US AQI.
///
/// Good readings are kept as per-minute sums (so memory does not grow with the poll rate), converted to µg/m³
/// on the way in. An average over a period covers `[now - period, now)`: whole minutes inside it, and the samples
/// inside it of the minute that straddles its start; its coverage is samples / (period / expected poll interval),
/// capped at 1. Hourly values for the NowCast are clock hours, the
/// most recent being the last complete one; an hour counts when its own coverage reaches the minimum.
///
/// Publication: an index should be published at the first evaluation, whenever `now` is in another clock hour
/// than at its last publication, and whenever its category changes (to or from "insufficient data" included).
public struct AirQualityIndexer: Sendable {
    /// The persistent part, so a restart does not lose a 24 h average.
    public struct State: Sendable, Hashable, Codable {
        public var minutes: [Pollutant: [MinuteSum]]
        public var lastISPU: Publication?
        public var lastAQI: Publication?
    }

    /// Sum and count of one pollutant's samples in one minute (µg/m³).
    public struct MinuteSum: Sendable, Hashable, Codable {
        public var minute: UnixMillis
        public var sum: Double
        public var count: Int
        /// The first and last sample times in the minute (absent in saves of older versions).
        public var first: UnixMillis?
        public var last: UnixMillis?

        /// The samples at or after `start`, taking them as evenly spaced from `first` to `last` (exact for a
        /// steady poll); without those times, as spread over the whole minute.
        func samples(from start: UnixMillis) -> Double {
            guard let first, let last else {
                let inside = Double(minute + AirQualityIndexer.minute - start) / Double(AirQualityIndexer.minute)
                return Double(count) * Swift.min(1, Swift.max(0, inside))
            }
            if start <= first { return Double(count) }
            if start > last || count < 2 { return 0 }
            let gap = Double(last - first) / Double(count - 1)
            let skipped = (Double(start - first) / gap).rounded(.up)
            return Swift.max(0, Double(count) - skipped)
        }
    }

    /// The clock hour and category of the last publication of an index.
    public struct Publication: Sendable, Hashable, Codable {
        public var hour: Int64
        public var category: String?
    }

    public let config: AirQualityConfig
    public let expectedInterval: Interval
    public let minimumCoverage: Double
    private var state = State(minutes: [:], lastISPU: nil, lastAQI: nil)

    fileprivate static let minute: Int64 = 60_000
    private static let hour: Int64 = 3_600_000

    public init(config: AirQualityConfig, expectedInterval: Interval, minimumCoverage: Double = 0.75) {
        self.config = config
        self.expectedInterval = Interval(milliseconds: max(1, expectedInterval.milliseconds))
        self.minimumCoverage = minimumCoverage
    }

    /// The regulation's 24 h, unless `AirQualityConfig.averaging` names the parameter.
    public func ispuAveraging(_ pollutant: Pollutant) -> Interval {
        config.averaging[pollutant.rawValue] ?? .minutes(24 * 60)
    }

    /// Takes a good reading whose quantity is a pollutant and whose unit converts; returns false otherwise.
    @discardableResult
    public mutating func ingest(_ reading: Reading) -> Bool {
        guard reading.quality == .good, let pollutant = Pollutant(rawValue: reading.quantity),
            let value = reading.value?.numeric, value.isFinite,
            let unit = ConcentrationUnit(symbol: reading.unit),
            let concentration = unit.toMicrogramsPerCubicMetre(value, of: pollutant)
        else { return false }
        let minute = WindowAggregator.alignedStart(reading.acquiredAt, Self.minute)
        var sums = state.minutes[pollutant, default: []]
        if let i = sums.lastIndex(where: { $0.minute <= minute }), sums[i].minute == minute {
            sums[i].sum += concentration
            sums[i].count += 1
            let t = reading.acquiredAt
            sums[i].first = sums[i].first.map { Swift.min($0, t) }
            sums[i].last = sums[i].last.map { Swift.max($0, t) }
        } else {
            let at = sums.firstIndex { $0.minute > minute } ?? sums.count
            let t = reading.acquiredAt
            sums.insert(MinuteSum(minute: minute, sum: concentration, count: 1, first: t, last: t), at: at)
        }
        let keep = max(ispuAveraging(pollutant).milliseconds, 24 * Self.hour) + Self.hour
        if let newest = sums.last?.minute { sums.removeAll { $0.minute < newest - keep } }
        state.minutes[pollutant] = sums
        return true
    }

    /// Mean in µg/m³ over `[now - period, now)`, with coverage and sample count.
    public func average(_ pollutant: Pollutant, over period: Interval, now: UnixMillis) -> ParameterAverage {
        average(pollutant, from: now - period.milliseconds, to: now)
    }

    private func average(_ pollutant: Pollutant, from start: UnixMillis, to end: UnixMillis) -> ParameterAverage {
        // A minute that straddles `start` counts with its samples at or after `start` (their mean taken as the
        // minute's), so the period is the trailing one at every instant, not the passed part of a minute.
        var sum = 0.0
        var count = 0.0
        for m in state.minutes[pollutant] ?? [] where m.minute + Self.minute > start && m.minute < end {
            let inside = m.minute >= start ? Double(m.count) : m.samples(from: start)
            sum += m.sum * inside / Double(m.count)
            count += inside
        }
        let expected = Double(end - start) / Double(expectedInterval.milliseconds)
        return ParameterAverage(
            concentration: count > 0 ? sum / count : nil, coverage: min(1, count / expected),
            averaging: Interval(milliseconds: end - start), samples: Int(count.rounded()))
    }

    /// The 12 clock-hour means before the hour containing `now`, most recent first; nil for an hour below coverage.
    public func hourlyMeans(_ pollutant: Pollutant, now: UnixMillis) -> [Double?] {
        let currentHour = WindowAggregator.alignedStart(now, Self.hour)
        return (1...12).map { k in
            let start = currentHour - Int64(k) * Self.hour
            let a = average(pollutant, from: start, to: start + Self.hour)
            return a.coverage >= minimumCoverage ? a.concentration : nil
        }
    }

    /// Computes the configured indices at `now` and whether each should be published.
    public mutating func evaluate(now: UnixMillis) -> AirQualityEvaluation {
        let hour = WindowAggregator.alignedStart(now, Self.hour) / Self.hour
        var evaluation = AirQualityEvaluation(ispu: nil, publishISPU: false, aqi: nil, publishAQI: false)
        if config.indices.contains(.ispu) {
            let result = ispu(now: now)
            evaluation.ispu = result
            evaluation.publishISPU = Self.due(&state.lastISPU, hour: hour, category: result.category?.rawValue)
        }
        if config.indices.contains(.aqi) {
            let result = aqi(now: now)
            evaluation.aqi = result
            evaluation.publishAQI = Self.due(&state.lastAQI, hour: hour, category: result.category?.rawValue)
        }
        return evaluation
    }

    /// The ISPU at `now` over each parameter's averaging period.
    public func ispu(now: UnixMillis) -> ISPUResult {
        var averages: [Pollutant: ParameterAverage] = [:]
        for pollutant in state.minutes.keys {
            averages[pollutant] = average(pollutant, over: ispuAveraging(pollutant), now: now)
        }
        return ISPUResult(at: now, averages: averages, minimumCoverage: minimumCoverage)
    }

    /// The US AQI at `now`: NowCast for particulates, the table's averaging period for gases (HC has none).
    public func aqi(now: UnixMillis) -> AQIResult {
        var parameters: [AQIResult.Parameter] = []
        for pollutant in state.minutes.keys.sorted() {
            switch pollutant {
            case .pm2_5, .pm10:
                let hours = hourlyMeans(pollutant, now: now)
                let metric: USAQI.Metric = pollutant == .pm2_5 ? .pm2_5 : .pm10
                let nowCast = USAQI.nowCast(hourly: hours).map { USAQI.truncate($0, metric) }
                parameters.append(
                    AQIResult.Parameter(
                        pollutant: pollutant, metric: metric, method: "nowcast", concentration: nowCast,
                        coverage: Double(hours.compactMap { $0 }.count) / 12,
                        subIndex: nowCast.flatMap { USAQI.subIndex(metric, concentration: $0) }))
            case .o3:
                let eight = gas(.o3_8h, hours: 8, now: now)
                let one = gas(.o3_1h, hours: 1, now: now)
                let ranked = [eight, one].filter { $0.subIndex != nil }
                    .max { $0.subIndex!.exact < $1.subIndex!.exact }
                parameters.append(ranked ?? eight)
            case .co:
                parameters.append(gas(.co_8h, hours: 8, now: now))
            case .no2:
                parameters.append(gas(.no2_1h, hours: 1, now: now))
            case .so2:
                parameters.append(sulphurDioxide(now: now))
            case .hc:
                continue
            }
        }
        return AQIResult(at: now, parameters: parameters)
    }

    private func gas(_ metric: USAQI.Metric, hours: Int64, now: UnixMillis) -> AQIResult.Parameter {
        let a = average(metric.pollutant, from: now - hours * Self.hour, to: now)
        let c = a.concentration.flatMap { metric.unit.fromMicrogramsPerCubicMetre($0, of: metric.pollutant) }
            .map { USAQI.truncate($0, metric) }
        let sub = a.coverage >= minimumCoverage ? c.flatMap { USAQI.subIndex(metric, concentration: $0) } : nil
        return AQIResult.Parameter(
            pollutant: metric.pollutant, metric: metric, method: "\(hours)h", concentration: c, coverage: a.coverage,
            subIndex: sub)
    }

    /// 1 h SO2 defines AQI up to 200 (304 ppb); above that the 24 h average decides, and AQI is 200 when it is
    /// below 305 ppb (TAD 2024).
    private func sulphurDioxide(now: UnixMillis) -> AQIResult.Parameter {
        let oneHour = gas(.so2_1h, hours: 1, now: now)
        guard let c = oneHour.concentration, oneHour.subIndex != nil, c > 304 else { return oneHour }
        let day = gas(.so2_24h, hours: 24, now: now)
        if day.subIndex != nil { return day }
        var capped = oneHour
        capped.subIndex = ScaledIndex(exact: 200, value: 200, beyondScale: false)
        return capped
    }

    private static func due(_ last: inout Publication?, hour: Int64, category: String?) -> Bool {
        if let previous = last, previous.hour == hour, previous.category == category { return false }
        last = Publication(hour: hour, category: category)
        return true
    }

    /// The state to persist (the lead keeps it in the journal meta).
    public func snapshot() -> State { state }
    /// Continues from a persisted state.
    public mutating func restore(_ saved: State) { state = saved }
}
