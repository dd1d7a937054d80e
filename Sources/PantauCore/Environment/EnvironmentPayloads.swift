import FoundationEssentials

/// A published body of the intelligence messages (aggregates, indices, alerts, rain), with the schema in
/// `docs/schemas/`. Keys are snake_case and sorted; timestamps are integer milliseconds since the epoch; a value
/// that is not known (insufficient data, no reading yet) is left out rather than sent as null or zero.
public protocol EnvironmentPayload: Codable, Sendable {}

extension EnvironmentPayload {
    /// The JSON body: an object, so it starts with `{` and `PayloadFraming` can insert `"seq"`.
    public func jsonBody() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }
}

/// `.../devices/<dev>/aggregates/<window>`: one closed window of one point.
public struct AggregatePayload: EnvironmentPayload, Hashable {
    public var device: String
    public var point: String
    public var quantity: String
    public var unit: String
    /// The window in config notation, e.g. `15m`.
    public var window: String
    public var windowMs: Int64
    public var start: UnixMillis
    public var end: UnixMillis
    public var count: Int
    public var min: Double
    public var max: Double
    public var mean: Double
    /// Population standard deviation.
    public var stddev: Double
    public var first: Double
    public var firstAt: UnixMillis
    public var last: Double
    public var lastAt: UnixMillis
    public var expected: Double
    public var coverage: Double
    public var late: Int

    enum CodingKeys: String, CodingKey {
        case device, point, quantity, unit, window, start, end, count, min, max, mean, stddev, first, last
        case expected, coverage, late
        case windowMs = "window_ms"
        case firstAt = "first_at"
        case lastAt = "last_at"
    }

    /// The JSON body, written directly (keys sorted, numbers and strings as `JSONEncoder` writes them; the tests
    /// compare the two byte for byte). Every point closes a window every minute: through `Encodable` these bodies
    /// cost more instructions than the telemetry itself. A value that is not finite throws, as `JSONEncoder` does.
    public func jsonBody() throws -> [UInt8] {
        for (name, value) in [
            ("min", min), ("max", max), ("mean", mean), ("stddev", stddev), ("first", first), ("last", last),
            ("expected", expected), ("coverage", coverage),
        ] where !value.isFinite {
            throw EncodingError.invalidValue(
                value,
                EncodingError.Context(
                    codingPath: [], debugDescription: "aggregate \(name) of \(device) \(point) is not finite: \(value)")
            )
        }
        var out = JSONBytes(capacity: 320 + device.utf8.count + point.utf8.count)
        out.byte(UInt8(ascii: "{"))
        out.key("count", first: true)
        out.number(.signed(Int64(count)))
        out.key("coverage")
        out.number(coverage)
        out.key("device")
        out.string(device)
        out.key("end")
        out.number(.signed(end))
        out.key("expected")
        out.number(expected)
        out.key("first")
        out.number(first)
        out.key("first_at")
        out.number(.signed(firstAt))
        out.key("last")
        out.number(last)
        out.key("last_at")
        out.number(.signed(lastAt))
        out.key("late")
        out.number(.signed(Int64(late)))
        out.key("max")
        out.number(max)
        out.key("mean")
        out.number(mean)
        out.key("min")
        out.number(min)
        out.key("point")
        out.string(point)
        out.key("quantity")
        out.string(quantity)
        out.key("start")
        out.number(.signed(start))
        out.key("stddev")
        out.number(stddev)
        out.key("unit")
        out.string(unit)
        out.key("window")
        out.string(window)
        out.key("window_ms")
        out.number(.signed(windowMs))
        out.byte(UInt8(ascii: "}"))
        return out.bytes
    }

    public init(_ r: WindowResult) {
        let s = r.statistics
        device = r.device
        point = r.point
        quantity = r.quantity
        unit = r.unit
        window = r.window.description
        windowMs = r.window.milliseconds
        start = r.start
        end = r.end
        count = s.count
        min = s.min
        max = s.max
        mean = s.mean
        stddev = s.standardDeviation
        first = s.first
        firstAt = s.firstAt
        last = s.last
        lastAt = s.lastAt
        expected = r.expected.roundedForPayload(decimals: 3)
        coverage = r.coverage.roundedForPayload(decimals: 4)
        late = r.lateDropped
    }
}

/// `"ok"` when a number could be computed, `"insufficient_data"` when coverage was below the minimum.
public enum IndexStatus: String, Codable, Sendable, Hashable {
    case ok
    case insufficientData = "insufficient_data"
}

/// `.../devices/<dev>/index/ispu`.
public struct ISPUPayload: EnvironmentPayload, Hashable {
    public struct Parameter: Codable, Sendable, Hashable {
        public var status: IndexStatus
        /// Mean in µg/m³ over `averaging_ms` (present whenever any sample arrived, even if insufficient).
        public var concentration: Double?
        public var unit: String
        public var averagingMs: Int64
        public var coverage: Double
        public var samples: Int
        public var subIndex: Int?
        public var beyondScale: Bool?

        enum CodingKeys: String, CodingKey {
            case status, concentration, unit, coverage, samples
            case averagingMs = "averaging_ms"
            case subIndex = "sub_index"
            case beyondScale = "beyond_scale"
        }
    }

    public var device: String
    public var at: UnixMillis
    public var status: IndexStatus
    public var ispu: Int?
    public var category: String?
    public var colour: String?
    public var critical: String?
    /// True when the critical parameter's concentration is above the table (the index is clamped at 500).
    public var beyondScale: Bool?
    public var minCoverage: Double
    public var parameters: [String: Parameter]

    enum CodingKeys: String, CodingKey {
        case device, at, status, ispu, category, colour, critical, parameters
        case beyondScale = "beyond_scale"
        case minCoverage = "min_coverage"
    }

    public init(device: String, result: ISPUResult, minimumCoverage: Double) {
        self.device = device
        at = result.at
        status = result.index == nil ? .insufficientData : .ok
        ispu = result.index?.value
        category = result.category?.rawValue
        colour = result.category?.colour
        critical = result.critical?.rawValue
        beyondScale = result.index?.beyondScale
        minCoverage = minimumCoverage
        var params: [String: Parameter] = [:]
        for p in result.parameters {
            params[p.pollutant.rawValue] = Parameter(
                status: p.subIndex == nil ? .insufficientData : .ok,
                concentration: p.average.concentration?.roundedForPayload(decimals: 3),
                unit: ConcentrationUnit.microgramsPerCubicMetre.rawValue,
                averagingMs: p.average.averaging.milliseconds,
                coverage: p.average.coverage.roundedForPayload(decimals: 4),
                samples: p.average.samples, subIndex: p.subIndex?.value, beyondScale: p.subIndex?.beyondScale)
        }
        parameters = params
    }
}

/// `.../devices/<dev>/index/aqi`.
public struct AQIPayload: EnvironmentPayload, Hashable {
    public struct Parameter: Codable, Sendable, Hashable {
        public var status: IndexStatus
        /// Table the sub-index came from: `pm2_5`, `pm10`, `o3_8h`, `o3_1h`, `co_8h`, `so2_1h`, `so2_24h`, `no2_1h`.
        public var metric: String
        /// `nowcast`, `1h`, `8h` or `24h`.
        public var method: String
        /// Truncated concentration in `unit`, as used for the lookup.
        public var concentration: Double?
        public var unit: String
        public var coverage: Double
        public var subIndex: Int?
        public var beyondScale: Bool?

        enum CodingKeys: String, CodingKey {
            case status, metric, method, concentration, unit, coverage
            case subIndex = "sub_index"
            case beyondScale = "beyond_scale"
        }
    }

    public var device: String
    public var at: UnixMillis
    public var status: IndexStatus
    public var aqi: Int?
    public var category: String?
    public var colour: String?
    public var dominant: String?
    public var beyondScale: Bool?
    public var parameters: [String: Parameter]

    enum CodingKeys: String, CodingKey {
        case device, at, status, aqi, category, colour, dominant, parameters
        case beyondScale = "beyond_scale"
    }

    public init(device: String, result: AQIResult) {
        self.device = device
        at = result.at
        status = result.index == nil ? .insufficientData : .ok
        aqi = result.index?.value
        category = result.category?.rawValue
        colour = result.category?.colour
        dominant = result.dominant?.rawValue
        beyondScale = result.index?.beyondScale
        var params: [String: Parameter] = [:]
        for p in result.parameters {
            params[p.pollutant.rawValue] = Parameter(
                status: p.subIndex == nil ? .insufficientData : .ok, metric: p.metric.rawValue, method: p.method,
                concentration: p.concentration, unit: p.metric.unit.rawValue,
                coverage: p.coverage.roundedForPayload(decimals: 4),
                subIndex: p.subIndex?.value, beyondScale: p.subIndex?.beyondScale)
        }
        parameters = params
    }
}

/// `.../devices/<dev>/alerts/<point>` (retained): the flood alert state of one water-level point.
public struct FloodAlertPayload: EnvironmentPayload, Hashable {
    public struct RateOfRise: Codable, Sendable, Hashable {
        public var active: Bool
        /// Rise over the period, in `unit`; absent before the first good reading.
        public var rise: Double?
        public var threshold: Double
        public var periodMs: Int64

        enum CodingKeys: String, CodingKey {
            case active, rise, threshold
            case periodMs = "period_ms"
        }
    }

    public struct Thresholds: Codable, Sendable, Hashable {
        public var siaga3: Double
        public var siaga2: Double
        public var siaga1: Double
        public var hysteresis: Double
    }

    public var device: String
    public var point: String
    /// When this state was produced.
    public var at: UnixMillis
    /// 4 (normal) to 1 (awas).
    public var level: Int
    public var levelName: String
    public var since: UnixMillis?
    public var value: Double?
    public var valueAt: UnixMillis?
    public var unit: String
    public var stale: Bool
    public var rateOfRise: RateOfRise?
    public var thresholds: Thresholds
    public var pollIntervalMs: Int64

    enum CodingKeys: String, CodingKey {
        case device, point, at, level, since, value, unit, stale, thresholds
        case levelName = "level_name"
        case valueAt = "value_at"
        case rateOfRise = "rate_of_rise"
        case pollIntervalMs = "poll_interval_ms"
    }

    public init(device: String, unit: String, engine: FloodAlertEngine, at: UnixMillis) {
        let s = engine.status
        let c = engine.config
        self.device = device
        point = c.point
        self.at = at
        level = s.level.rawValue
        levelName = s.level.name
        since = s.since
        value = s.value?.roundedForPayload(decimals: 4)
        valueAt = s.valueAt
        self.unit = unit
        stale = s.stale
        rateOfRise = c.rateOfRise.map {
            RateOfRise(
                active: s.rateOfRiseActive, rise: s.risePerPeriod?.roundedForPayload(decimals: 4), threshold: $0,
                periodMs: c.rateOfRisePeriod.milliseconds)
        }
        thresholds = Thresholds(siaga3: c.siaga3, siaga2: c.siaga2, siaga1: c.siaga1, hysteresis: c.hysteresis)
        pollIntervalMs = engine.pollInterval.milliseconds
    }
}

/// `.../devices/<dev>/rain`: rain in the last interval, hour and day with BMKG categories.
public struct RainPayload: EnvironmentPayload, Hashable {
    public var device: String
    public var point: String
    public var at: UnixMillis
    public var intervalStart: UnixMillis
    public var mmInterval: Double
    /// Rain over the sliding last hour (= intensity in mm/h).
    public var intensityMmH: Double
    public var mm24h: Double
    public var categoryHourly: String
    public var categoryDaily: String
    public var counterResets: Int

    enum CodingKeys: String, CodingKey {
        case device, point, at
        case intervalStart = "interval_start"
        case mmInterval = "mm_interval"
        case intensityMmH = "intensity_mm_h"
        case mm24h = "mm_24h"
        case categoryHourly = "category_hourly"
        case categoryDaily = "category_daily"
        case counterResets = "counter_resets"
    }

    public init(device: String, point: String, report: RainReport) {
        self.device = device
        self.point = point
        at = report.at
        intervalStart = report.intervalStart
        mmInterval = report.intervalMillimetres
        intensityMmH = report.lastHourMillimetres
        mm24h = report.last24HoursMillimetres
        categoryHourly = report.hourlyCategory.rawValue
        categoryDaily = report.dailyCategory.rawValue
        counterResets = report.counterResets
    }
}
