/// The Indonesian air pollution standard index (Indeks Standar Pencemar Udara), Permen LHK P.14/2020.
///
/// Each parameter's sub-index is interpolated linearly between consecutive upper bounds of the regulation's
/// table, starting at (0 µg/m³, 0). Rules the regulation leaves open, fixed here:
/// - rounding: the sub-index is rounded to the nearest integer, halves away from zero (50.5 → 51), and the
///   category is taken from the rounded value;
/// - above the top bound the sub-index is clamped at 500 and flagged `beyondScale`;
/// - a negative concentration (a sensor's zero offset) counts as 0.
public enum ISPU {
    /// The index values at the table's upper bounds.
    public static let indexBounds: [Double] = [50, 100, 200, 300, 500]

    /// Upper concentration bounds in µg/m³ for each index bound, per parameter (regulation appendix, 24 h).
    public static func concentrationBounds(_ pollutant: Pollutant) -> [Double] {
        switch pollutant {
        case .pm10: return [50, 150, 350, 420, 500]
        case .pm2_5: return [15.5, 55.4, 150.4, 250.4, 500]
        case .so2: return [52, 180, 400, 800, 1200]
        case .co: return [4000, 8000, 15000, 30000, 45000]
        case .o3: return [120, 235, 400, 800, 1000]
        case .no2: return [80, 200, 1130, 2260, 3000]
        case .hc: return [45, 100, 215, 432, 648]
        }
    }

    /// The sub-index of one parameter for a concentration in µg/m³.
    public static func subIndex(_ pollutant: Pollutant, concentration: Double) -> ScaledIndex {
        let x = max(0, concentration)
        let bounds = concentrationBounds(pollutant)
        guard let top = bounds.last, x <= top else {
            return .beyondTop
        }
        var lowX = 0.0
        var lowI = 0.0
        for (k, highX) in bounds.enumerated() {
            let highI = indexBounds[k]
            if x <= highX {
                return ScaledIndex(interpolating: x, low: (lowX, lowI), high: (highX, highI))
            }
            lowX = highX
            lowI = highI
        }
        return .beyondTop
    }
}

/// An index value: the unrounded interpolation, the published integer, and whether the input was above the table.
public struct ScaledIndex: Sendable, Hashable, Codable {
    public var exact: Double
    public var value: Int
    public var beyondScale: Bool

    public init(exact: Double, value: Int, beyondScale: Bool) {
        self.exact = exact
        self.value = value
        self.beyondScale = beyondScale
    }

    /// Linear interpolation inside one band of a table, rounded half away from zero.
    init(interpolating x: Double, low: (x: Double, index: Double), high: (x: Double, index: Double)) {
        let exact = (high.index - low.index) / (high.x - low.x) * (x - low.x) + low.index
        self.init(exact: exact, value: Int(exact.rounded(.toNearestOrAwayFromZero)), beyondScale: false)
    }

    /// Above the top of a table: clamped at 500 and flagged.
    static let beyondTop = ScaledIndex(exact: 500, value: 500, beyondScale: true)
}

/// The five ISPU categories with the regulation's colours.
public enum ISPUCategory: String, Sendable, Hashable, CaseIterable, Codable {
    case baik = "Baik"
    case sedang = "Sedang"
    case tidakSehat = "Tidak Sehat"
    case sangatTidakSehat = "Sangat Tidak Sehat"
    case berbahaya = "Berbahaya"

    /// The category of a rounded ISPU value: 0–50, 51–100, 101–200, 201–300, above 300.
    public init(index: Int) {
        switch index {
        case ...50: self = .baik
        case 51...100: self = .sedang
        case 101...200: self = .tidakSehat
        case 201...300: self = .sangatTidakSehat
        default: self = .berbahaya
        }
    }

    /// Colour as `#rrggbb`: hijau, biru, kuning, merah, hitam.
    public var colour: String {
        switch self {
        case .baik: return "#34cc33"
        case .sedang: return "#0070c0"
        case .tidakSehat: return "#ffc100"
        case .sangatTidakSehat: return "#ff0000"
        case .berbahaya: return "#000000"
        }
    }
}

/// The state of one parameter's average at evaluation time.
public struct ParameterAverage: Sendable, Hashable {
    /// Mean concentration in µg/m³ over the averaging period; present even when coverage is too low.
    public var concentration: Double?
    /// Share of the expected samples that arrived in the period (0 to 1).
    public var coverage: Double
    public var averaging: Interval
    public var samples: Int

    public init(concentration: Double?, coverage: Double, averaging: Interval, samples: Int) {
        self.concentration = concentration
        self.coverage = coverage
        self.averaging = averaging
        self.samples = samples
    }
}

/// The ISPU of one device at one time.
public struct ISPUResult: Sendable, Hashable {
    /// One parameter: its average and, when coverage is sufficient, its sub-index.
    public struct Parameter: Sendable, Hashable {
        public var pollutant: Pollutant
        public var average: ParameterAverage
        /// Nil means "insufficient data": the average's coverage is below the minimum.
        public var subIndex: ScaledIndex?

        public init(pollutant: Pollutant, average: ParameterAverage, subIndex: ScaledIndex?) {
            self.pollutant = pollutant
            self.average = average
            self.subIndex = subIndex
        }
    }

    public var at: UnixMillis
    /// Overall ISPU (max sub-index); nil when no parameter has sufficient data.
    public var index: ScaledIndex?
    public var category: ISPUCategory?
    public var critical: Pollutant?
    public var parameters: [Parameter]

    /// Computes the result from per-parameter averages; a parameter below `minimumCoverage` gets no number.
    public init(at: UnixMillis, averages: [Pollutant: ParameterAverage], minimumCoverage: Double) {
        self.at = at
        var params: [Parameter] = []
        var indices: [Pollutant: ScaledIndex] = [:]
        for (pollutant, average) in averages.sorted(by: { $0.key < $1.key }) {
            var sub: ScaledIndex?
            if let c = average.concentration, average.coverage >= minimumCoverage {
                sub = ISPU.subIndex(pollutant, concentration: c)
                indices[pollutant] = sub
            }
            params.append(Parameter(pollutant: pollutant, average: average, subIndex: sub))
        }
        parameters = params
        if let (overall, critical) = highestSubIndex(indices) {
            index = overall
            category = ISPUCategory(index: overall.value)
            self.critical = critical
        }
    }
}
