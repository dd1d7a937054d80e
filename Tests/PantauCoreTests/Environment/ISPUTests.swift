import Testing

@testable import PantauCore

@Suite("Environment ISPU")
struct EnvironmentISPUTests {
    /// The P.14/2020 appendix, transcribed independently of the implementation (domain.md §1).
    static let table: [(Pollutant, [Double])] = [
        (.pm10, [50, 150, 350, 420, 500]),
        (.pm2_5, [15.5, 55.4, 150.4, 250.4, 500]),
        (.so2, [52, 180, 400, 800, 1200]),
        (.co, [4000, 8000, 15000, 30000, 45000]),
        (.o3, [120, 235, 400, 800, 1000]),
        (.no2, [80, 200, 1130, 2260, 3000]),
        (.hc, [45, 100, 215, 432, 648]),
    ]
    static let indexAt: [Int] = [50, 100, 200, 300, 500]

    struct Edge: CustomTestStringConvertible, Sendable {
        var pollutant: Pollutant
        var concentration: Double
        var index: Int
        var testDescription: String { "\(pollutant) \(concentration) -> \(index)" }
    }

    /// Every upper bound gives exactly its index value.
    static let edges: [Edge] = table.flatMap { p, bounds in
        bounds.enumerated().map { k, x in Edge(pollutant: p, concentration: x, index: indexAt[k]) }
    }

    /// The middle of every band gives the middle of its index band (linear interpolation, starting at 0 -> 0).
    static let midpoints: [Edge] = table.flatMap { p, bounds in
        bounds.enumerated().map { k, x in
            let lowX = k == 0 ? 0 : bounds[k - 1]
            let lowI = k == 0 ? 0 : indexAt[k - 1]
            return Edge(pollutant: p, concentration: (lowX + x) / 2, index: (lowI + indexAt[k]) / 2)
        }
    }

    @Test("upper bound of every band", arguments: edges)
    func upperBounds(_ e: Edge) {
        let s = ISPU.subIndex(e.pollutant, concentration: e.concentration)
        #expect(s.value == e.index)
        #expect(envApproximately(s.exact, Double(e.index)))
        #expect(!s.beyondScale)
    }

    @Test("middle of every band", arguments: midpoints)
    func bandMiddles(_ e: Edge) {
        #expect(ISPU.subIndex(e.pollutant, concentration: e.concentration).value == e.index)
    }

    @Test("zero, negative and beyond the top", arguments: Pollutant.allCases)
    func extremes(_ p: Pollutant) {
        #expect(ISPU.subIndex(p, concentration: 0).value == 0)
        #expect(ISPU.subIndex(p, concentration: -3).value == 0)
        let top = ISPU.concentrationBounds(p).last!
        let above = ISPU.subIndex(p, concentration: top * 1.01)
        #expect(above.value == 500)
        #expect(above.beyondScale)
        #expect(ISPUCategory(index: above.value) == .berbahaya)
    }

    @Test("rounding: halves away from zero, category from the rounded value")
    func rounding() {
        // PM10 band 50..150 maps to 50..100: half an index point per µg/m³.
        #expect(ISPU.subIndex(.pm10, concentration: 50.9).value == 50)
        #expect(ISPUCategory(index: ISPU.subIndex(.pm10, concentration: 50.9).value) == .baik)
        #expect(ISPU.subIndex(.pm10, concentration: 51).value == 51)
        #expect(ISPUCategory(index: ISPU.subIndex(.pm10, concentration: 51).value) == .sedang)
        // PM2.5 just above 15.5: 50 + 50/39.9 * 0.1 = 50.125 rounds to 50, still Baik.
        #expect(ISPU.subIndex(.pm2_5, concentration: 15.6).value == 50)
    }

    @Test(
        "category edges and colours",
        arguments: [
            (0, ISPUCategory.baik), (50, .baik), (51, .sedang), (100, .sedang), (101, .tidakSehat), (200, .tidakSehat),
            (201, .sangatTidakSehat), (300, .sangatTidakSehat), (301, .berbahaya), (500, .berbahaya),
        ])
    func categories(_ index: Int, _ category: ISPUCategory) {
        #expect(ISPUCategory(index: index) == category)
    }

    @Test func colours() {
        #expect(ISPUCategory.allCases.map(\.colour) == ["#34cc33", "#0070c0", "#ffc100", "#ff0000", "#000000"])
    }

    @Test("gas conversion at 25 °C, 1 atm")
    func conversion() {
        // 100 ppb NO2 = 100 * 46.0055 / 24.45 = 188.1616 µg/m³.
        #expect(
            envApproximately(ConcentrationUnit.ppb.toMicrogramsPerCubicMetre(100, of: .no2), 188.16155, tolerance: 1e-4)
        )
        // 1 ppm CO = 1000 * 28.010 / 24.45 = 1145.6033 µg/m³.
        #expect(
            envApproximately(ConcentrationUnit.ppm.toMicrogramsPerCubicMetre(1, of: .co), 1145.6033, tolerance: 1e-4))
        #expect(envApproximately(ConcentrationUnit.ppb.toMicrogramsPerCubicMetre(24.45, of: .hc), 16.04))
        #expect(envApproximately(ConcentrationUnit.ppb.toMicrogramsPerCubicMetre(24.45, of: .so2), 64.066))
        #expect(envApproximately(ConcentrationUnit.ppb.toMicrogramsPerCubicMetre(24.45, of: .o3), 47.997))
        #expect(ConcentrationUnit.mg_m3(2.5) == 2500)
        #expect(ConcentrationUnit.ppb.toMicrogramsPerCubicMetre(10, of: .pm2_5) == nil)
        for symbol in ["ug/m3", "µg/m³", "μg/m3", "UG/M3", " ug/m3 "] {
            #expect(ConcentrationUnit(symbol: symbol) == .microgramsPerCubicMetre, "\(symbol)")
        }
        #expect(ConcentrationUnit(symbol: "ppb") == .ppb)
        #expect(ConcentrationUnit(symbol: "mg/m3") == .milligramsPerCubicMetre)
        #expect(ConcentrationUnit(symbol: "degC") == nil)
        let back = ConcentrationUnit.ppb.fromMicrogramsPerCubicMetre(188.16155, of: .no2)
        #expect(envApproximately(back, 100, tolerance: 1e-4))
    }

    @Test("overall = max, critical parameter, insufficient data has no number")
    func combine() {
        let day = Interval.minutes(24 * 60)
        let averages: [Pollutant: ParameterAverage] = [
            .pm10: ParameterAverage(concentration: 150, coverage: 1, averaging: day, samples: 1440),  // 100
            .pm2_5: ParameterAverage(concentration: 102.9, coverage: 0.9, averaging: day, samples: 1300),  // 150
            .so2: ParameterAverage(concentration: 800, coverage: 0.5, averaging: day, samples: 720),  // 300, too sparse
        ]
        let r = ISPUResult(at: envMidnight, averages: averages, minimumCoverage: 0.75)
        #expect(r.index?.value == 150)
        #expect(r.critical == .pm2_5)
        #expect(r.category == .tidakSehat)
        let so2 = r.parameters.first { $0.pollutant == .so2 }
        #expect(so2?.subIndex == nil)
        #expect(so2?.average.concentration == 800)

        let none = ISPUResult(
            at: envMidnight,
            averages: [.co: ParameterAverage(concentration: 10, coverage: 0.2, averaging: day, samples: 5)],
            minimumCoverage: 0.75)
        #expect(none.index == nil)
        #expect(none.category == nil)
        #expect(none.critical == nil)
    }

    @Test("a tie goes to the table order")
    func tie() {
        let day = Interval.minutes(24 * 60)
        let r = ISPUResult(
            at: envMidnight,
            averages: [
                .no2: ParameterAverage(concentration: 200, coverage: 1, averaging: day, samples: 10),
                .pm10: ParameterAverage(concentration: 150, coverage: 1, averaging: day, samples: 10),
            ], minimumCoverage: 0.75)
        #expect(r.index?.value == 100)
        #expect(r.critical == .pm10)
    }
}

extension ConcentrationUnit {
    fileprivate static func mg_m3(_ v: Double) -> Double? {
        ConcentrationUnit.milligramsPerCubicMetre.toMicrogramsPerCubicMetre(v, of: .co)
    }
}
