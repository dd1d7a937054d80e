import Testing

@testable import PantauCore

@Suite("Environment US AQI")
struct EnvironmentAQITests {
    struct Row: CustomTestStringConvertible, Sendable {
        var metric: USAQI.Metric
        var low: Double
        var high: Double
        var indexLow: Int
        var indexHigh: Int
        var testDescription: String { "\(metric) \(low)...\(high) -> \(indexLow)...\(indexHigh)" }
    }

    /// TAD EPA-454/B-24-002 (May 2024), transcribed from domain.md §2 independently of the implementation.
    static let rows: [Row] = {
        let bands = [(0, 50), (51, 100), (101, 150), (151, 200), (201, 300), (301, 500)]
        func metric(_ m: USAQI.Metric, from band: Int, _ pairs: [(Double, Double)]) -> [Row] {
            pairs.enumerated().map { k, p in
                Row(metric: m, low: p.0, high: p.1, indexLow: bands[band + k].0, indexHigh: bands[band + k].1)
            }
        }
        return metric(
            .pm2_5, from: 0, [(0, 9.0), (9.1, 35.4), (35.5, 55.4), (55.5, 125.4), (125.5, 225.4), (225.5, 325.4)])
            + metric(.pm10, from: 0, [(0, 54), (55, 154), (155, 254), (255, 354), (355, 424), (425, 604)])
            + metric(.o3_8h, from: 0, [(0, 0.054), (0.055, 0.070), (0.071, 0.085), (0.086, 0.105), (0.106, 0.200)])
            + metric(.o3_1h, from: 2, [(0.125, 0.164), (0.165, 0.204), (0.205, 0.404), (0.405, 0.604)])
            + metric(.co_8h, from: 0, [(0, 4.4), (4.5, 9.4), (9.5, 12.4), (12.5, 15.4), (15.5, 30.4), (30.5, 50.4)])
            + metric(.so2_1h, from: 0, [(0, 35), (36, 75), (76, 185), (186, 304)])
            + metric(.so2_24h, from: 4, [(305, 604), (605, 1004)])
            + metric(.no2_1h, from: 0, [(0, 53), (54, 100), (101, 360), (361, 649), (650, 1249), (1250, 2049)])
    }()

    @Test("every breakpoint: both ends of every row", arguments: rows)
    func breakpoints(_ row: Row) {
        #expect(USAQI.subIndex(row.metric, concentration: row.low)?.value == row.indexLow)
        #expect(USAQI.subIndex(row.metric, concentration: row.high)?.value == row.indexHigh)
        let middle = USAQI.subIndex(row.metric, concentration: (row.low + row.high) / 2)!.value
        #expect(middle >= row.indexLow && middle <= row.indexHigh)
        #expect(AQICategory(index: row.indexLow) == AQICategory(index: row.indexHigh))
    }

    @Test("truncation before lookup")
    func truncation() {
        #expect(USAQI.subIndex(.pm2_5, concentration: 9.09)?.value == 50)
        #expect(USAQI.subIndex(.pm2_5, concentration: 35.49)?.value == 100)
        #expect(USAQI.subIndex(.pm10, concentration: 54.9)?.value == 50)
        #expect(USAQI.subIndex(.o3_8h, concentration: 0.0549)?.value == 50)
        #expect(USAQI.subIndex(.co_8h, concentration: 4.49)?.value == 50)
        #expect(USAQI.subIndex(.no2_1h, concentration: 53.9)?.value == 50)
        #expect(USAQI.truncate(12.36, .pm2_5) == 12.3)
        #expect(USAQI.truncate(0.0709999, .o3_8h) == 0.070)
    }

    @Test("interpolation and rounding inside a row")
    func interpolation() {
        // PM2.5 12.0: (100 - 51) / (35.4 - 9.1) * (12.0 - 9.1) + 51 = 56.403 -> 56.
        #expect(USAQI.subIndex(.pm2_5, concentration: 12.0)?.value == 56)
        // PM10 100: (100 - 51) / (154 - 55) * (100 - 55) + 51 = 73.27 -> 73.
        #expect(USAQI.subIndex(.pm10, concentration: 100)?.value == 73)
    }

    @Test("outside the tables")
    func outside() {
        #expect(USAQI.subIndex(.o3_1h, concentration: 0.124) == nil)
        #expect(USAQI.subIndex(.so2_24h, concentration: 200) == nil)
        let beyond = USAQI.subIndex(.pm2_5, concentration: 400)!
        #expect(beyond.value == 500 && beyond.beyondScale)
        #expect(USAQI.subIndex(.pm2_5, concentration: 325.4)?.beyondScale == false)
    }

    @Test(
        "category edges",
        arguments: [
            (50, AQICategory.good), (51, .moderate), (100, .moderate), (101, .unhealthyForSensitiveGroups),
            (150, .unhealthyForSensitiveGroups), (151, .unhealthy), (200, .unhealthy), (201, .veryUnhealthy),
            (300, .veryUnhealthy), (301, .hazardous), (500, .hazardous),
        ])
    func categories(_ index: Int, _ category: AQICategory) {
        #expect(AQICategory(index: index) == category)
    }

    @Test func colours() {
        #expect(
            AQICategory.allCases.map(\.colour) == ["#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#8F3F97", "#7E0023"])
    }

    /// EPA/AirNow "Computing the NowCast" training example (rules restated at
    /// forum.airnowtech.org/t/the-nowcast-for-pm2-5-and-pm10/172): hours oldest first
    /// 50 80 75 90 82 53 64 74 21 10 16 13 µg/m³, published result 17.4 µg/m³.
    /// Range 90 - 10 = 80, scaled 80/90, weight 1 - 0.89 = 0.11 < 0.5 so w = 0.5.
    /// By hand: Σ 0.5^(i-1) c_i = 13 + 8 + 2.5 + 2.625 + 4.625 + 2 + 0.828125 + 0.640625 + 0.3515625 + 0.146484375
    /// + 0.078125 + 0.0244140625 = 34.8193359375; Σ 0.5^(i-1) = 1.99951171875; NowCast = 17.4139 -> 17.4 µg/m³.
    /// AQI (2024 table): (100 - 51) / (35.4 - 9.1) * (17.4 - 9.1) + 51 = 66.46 -> 66.
    @Test("NowCast: EPA worked example")
    func nowCastEPAExample() {
        let oldestFirst: [Double] = [50, 80, 75, 90, 82, 53, 64, 74, 21, 10, 16, 13]
        let nowCast = USAQI.nowCast(hourly: oldestFirst.reversed())
        #expect(envApproximately(nowCast, 34.8193359375 / 1.99951171875))
        #expect(USAQI.truncate(nowCast!, .pm2_5) == 17.4)
        #expect(USAQI.subIndex(.pm2_5, concentration: nowCast!)?.value == 66)
    }

    @Test("NowCast: weight above one half and missing hours")
    func nowCastWeights() {
        // Stable air: cmin/cmax = 1, the NowCast is the plain mean.
        #expect(envApproximately(USAQI.nowCast(hourly: Array(repeating: 20, count: 12)), 20))
        // 12 and 10 (c3 missing): w = 10/12; (12 + 10 w) / (1 + w) = (12 + 8.333) / 1.8333 = 11.0909.
        #expect(envApproximately(USAQI.nowCast(hourly: [12, 10, nil]), (12 + 10 * (10.0 / 12)) / (1 + 10.0 / 12)))
        // c1 missing, c2 = 20, c3 = 10: w = 0.5; (0.5 * 20 + 0.25 * 10) / 0.75 = 16.667.
        #expect(envApproximately(USAQI.nowCast(hourly: [nil, 20, 10]), 12.5 / 0.75))
        // Only 1 of the 3 most recent hours: invalid even with older data.
        #expect(USAQI.nowCast(hourly: [nil, nil, 10, 10, 10, 10]) == nil)
        #expect(USAQI.nowCast(hourly: [5, nil, nil]) == nil)
        #expect(USAQI.nowCast(hourly: [0, 0, 0]) == 0)
    }
}
