/// The US EPA Air Quality Index (Technical Assistance Document EPA-454/B-24-002, May 2024 PM2.5 revision).
///
/// Concentrations are truncated to the table's precision before the lookup (PM2.5 0.1 µg/m³, PM10 1 µg/m³,
/// O3 0.001 ppm, CO 0.1 ppm, SO2 and NO2 1 ppb) and the AQI is rounded to the nearest integer, halves up.
/// Above the top of a table the AQI is clamped at 500 and flagged `beyondScale`, as for ISPU.
public enum USAQI {
    /// One averaging form of one pollutant, each with its own breakpoint table and unit.
    public enum Metric: String, Sendable, Hashable, CaseIterable, Codable {
        /// PM2.5, 24 h or NowCast, µg/m³.
        case pm2_5
        /// PM10, 24 h or NowCast, µg/m³.
        case pm10
        case o3_8h, o3_1h, co_8h, so2_1h, so2_24h, no2_1h

        public var pollutant: Pollutant {
            switch self {
            case .pm2_5: return .pm2_5
            case .pm10: return .pm10
            case .o3_8h, .o3_1h: return .o3
            case .co_8h: return .co
            case .so2_1h, .so2_24h: return .so2
            case .no2_1h: return .no2
            }
        }

        /// The unit the table is written in.
        public var unit: ConcentrationUnit {
            switch self {
            case .pm2_5, .pm10: return .microgramsPerCubicMetre
            case .o3_8h, .o3_1h, .co_8h: return .ppm
            case .so2_1h, .so2_24h, .no2_1h: return .ppb
            }
        }

        /// Truncation step of the table's precision.
        public var step: Double {
            switch self {
            case .pm2_5, .co_8h: return 0.1
            case .pm10, .so2_1h, .so2_24h, .no2_1h: return 1
            case .o3_8h, .o3_1h: return 0.001
            }
        }
    }

    /// One row: concentrations `low...high` map linearly to `indexLow...indexHigh`.
    public struct Breakpoint: Sendable, Hashable {
        public var low: Double
        public var high: Double
        public var indexLow: Double
        public var indexHigh: Double
    }

    private static let bands: [(Double, Double)] = [(0, 50), (51, 100), (101, 150), (151, 200), (201, 300), (301, 500)]

    private static func rows(_ bandOffset: Int, _ pairs: [(Double, Double)]) -> [Breakpoint] {
        pairs.enumerated().map { k, pair in
            let band = bands[bandOffset + k]
            return Breakpoint(low: pair.0, high: pair.1, indexLow: band.0, indexHigh: band.1)
        }
    }

    /// The table of one metric, lowest row first.
    public static func breakpoints(_ metric: Metric) -> [Breakpoint] {
        switch metric {
        case .pm2_5:
            return rows(0, [(0, 9.0), (9.1, 35.4), (35.5, 55.4), (55.5, 125.4), (125.5, 225.4), (225.5, 325.4)])
        case .pm10:
            return rows(0, [(0, 54), (55, 154), (155, 254), (255, 354), (355, 424), (425, 604)])
        case .o3_8h:
            return rows(0, [(0, 0.054), (0.055, 0.070), (0.071, 0.085), (0.086, 0.105), (0.106, 0.200)])
        case .o3_1h:
            return rows(2, [(0.125, 0.164), (0.165, 0.204), (0.205, 0.404), (0.405, 0.604)])
        case .co_8h:
            return rows(0, [(0, 4.4), (4.5, 9.4), (9.5, 12.4), (12.5, 15.4), (15.5, 30.4), (30.5, 50.4)])
        case .so2_1h:
            return rows(0, [(0, 35), (36, 75), (76, 185), (186, 304)])
        case .so2_24h:
            return rows(4, [(305, 604), (605, 1004)])
        case .no2_1h:
            return rows(0, [(0, 53), (54, 100), (101, 360), (361, 649), (650, 1249), (1250, 2049)])
        }
    }

    /// Truncates to the metric's precision. A tiny tolerance keeps unit round trips (24.45 L/mol) on their digit.
    public static func truncate(_ concentration: Double, _ metric: Metric) -> Double {
        let steps = (max(0, concentration) / metric.step + 1e-9).rounded(.down)
        // Multiplying back by 0.1 reintroduces binary noise; dividing by the integer reciprocal does not.
        return (steps / (1 / metric.step)).roundedForPayload(decimals: 6)
    }

    /// The AQI of a concentration in the metric's unit; nil when the metric does not cover it (O3 1 h below
    /// 0.125 ppm, SO2 24 h below 305 ppb).
    public static func subIndex(_ metric: Metric, concentration: Double) -> ScaledIndex? {
        let c = truncate(concentration, metric)
        let table = breakpoints(metric)
        guard let first = table.first, let last = table.last, c >= first.low else { return nil }
        if c > last.high { return .beyondTop }
        let row = table.first { c <= $0.high }!
        return ScaledIndex(interpolating: c, low: (row.low, row.indexLow), high: (row.high, row.indexHigh))
    }

    /// The PM NowCast from up to 12 hourly averages, most recent first (nil = missing hour).
    ///
    /// w* = cmin / cmax over the available hours, w = max(w*, 0.5); NowCast = Σ wⁱ⁻¹cᵢ / Σ wⁱ⁻¹ over available
    /// hours. Valid only when at least 2 of the 3 most recent hours are present. Hourly values are used
    /// unrounded; the result is not truncated here (`subIndex` truncates).
    public static func nowCast(hourly: [Double?]) -> Double? {
        let hours = Array(hourly.prefix(12))
        guard hours.prefix(3).compactMap({ $0 }).count >= 2 else { return nil }
        let present = hours.compactMap { $0 }
        guard let cmax = present.max(), let cmin = present.min() else { return nil }
        let weight = cmax > 0 ? max(cmin / cmax, 0.5) : 1
        var numerator = 0.0
        var denominator = 0.0
        var factor = 1.0
        for value in hours {
            if let c = value {
                numerator += factor * c
                denominator += factor
            }
            factor *= weight
        }
        return numerator / denominator
    }
}

/// The six AQI categories with the EPA colours.
public enum AQICategory: String, Sendable, Hashable, CaseIterable, Codable {
    case good = "Good"
    case moderate = "Moderate"
    case unhealthyForSensitiveGroups = "Unhealthy for Sensitive Groups"
    case unhealthy = "Unhealthy"
    case veryUnhealthy = "Very Unhealthy"
    case hazardous = "Hazardous"

    /// The category of a rounded AQI: 0–50, 51–100, 101–150, 151–200, 201–300, above 300.
    public init(index: Int) {
        switch index {
        case ...50: self = .good
        case 51...100: self = .moderate
        case 101...150: self = .unhealthyForSensitiveGroups
        case 151...200: self = .unhealthy
        case 201...300: self = .veryUnhealthy
        default: self = .hazardous
        }
    }

    public var colour: String {
        switch self {
        case .good: return "#00E400"
        case .moderate: return "#FFFF00"
        case .unhealthyForSensitiveGroups: return "#FF7E00"
        case .unhealthy: return "#FF0000"
        case .veryUnhealthy: return "#8F3F97"
        case .hazardous: return "#7E0023"
        }
    }
}

/// The AQI of one device at one time.
public struct AQIResult: Sendable, Hashable {
    /// One pollutant: the concentration used (in the metric's unit), how it was averaged, and its AQI.
    public struct Parameter: Sendable, Hashable {
        public var pollutant: Pollutant
        /// The metric whose table gave the sub-index (e.g. `o3_1h` when the 1 h ozone AQI is the higher one).
        public var metric: USAQI.Metric
        /// `nowcast`, `1h`, `8h` or `24h`.
        public var method: String
        public var concentration: Double?
        /// Share of expected samples (for NowCast: share of the 12 hours that are valid).
        public var coverage: Double
        /// Nil means "insufficient data".
        public var subIndex: ScaledIndex?

        public init(
            pollutant: Pollutant, metric: USAQI.Metric, method: String, concentration: Double?, coverage: Double,
            subIndex: ScaledIndex?
        ) {
            self.pollutant = pollutant
            self.metric = metric
            self.method = method
            self.concentration = concentration
            self.coverage = coverage
            self.subIndex = subIndex
        }
    }

    public var at: UnixMillis
    public var index: ScaledIndex?
    public var category: AQICategory?
    /// The pollutant with the highest sub-index ("main pollutant").
    public var dominant: Pollutant?
    public var parameters: [Parameter]

    public init(at: UnixMillis, parameters: [Parameter]) {
        self.at = at
        self.parameters = parameters.sorted { $0.pollutant < $1.pollutant }
        var indices: [Pollutant: ScaledIndex] = [:]
        for p in parameters { if let s = p.subIndex { indices[p.pollutant] = s } }
        if let (overall, main) = highestSubIndex(indices) {
            index = overall
            category = AQICategory(index: overall.value)
            dominant = main
        }
    }
}

extension Double {
    /// Rounded to a number of decimal places, halves away from zero.
    func roundedForPayload(decimals: Int) -> Double {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        return (self * scale).rounded(.toNearestOrAwayFromZero) / scale
    }
}
