/// An air pollutant known to the ISPU and AQI calculators, named as in the quantity vocabulary.
public enum Pollutant: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case pm10, pm2_5, so2, co, o3, no2, hc

    /// Molecular weight in g/mol for gases; nil for particulates. HC is expressed as methane (CH4).
    public var molecularWeight: Double? {
        switch self {
        case .no2: return 46.0055
        case .so2: return 64.066
        case .co: return 28.010
        case .o3: return 47.997
        case .hc: return 16.04
        case .pm10, .pm2_5: return nil
        }
    }

    /// Order of the regulation's table, used to break ties deterministically.
    public static func < (a: Pollutant, b: Pollutant) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Concentration units accepted from device profiles, and their conversion to µg/m³.
///
/// Gas mixing ratios are converted at 25 °C and 1 atm, where one mole of an ideal gas occupies 24.45 L:
/// µg/m³ = ppb × M / 24.45 (ppm is 1000 ppb). This is the reference state of the US EPA and of most
/// Indonesian AQMS exports; the regulation itself does not restate it.
public enum ConcentrationUnit: String, Sendable, Hashable, Codable {
    case microgramsPerCubicMetre = "ug/m3"
    case milligramsPerCubicMetre = "mg/m3"
    case ppb
    case ppm

    /// Molar volume of an ideal gas at 25 °C and 101.325 kPa, in litres.
    public static let molarVolumeLitres = 24.45

    /// Recognises the spellings profiles use (`ug/m3`, `µg/m³`, `μg/m3`, `mg/m3`, `ppb`, `ppm`); nil otherwise.
    public init?(symbol: String) {
        let s = symbol.trimmedWhitespace().lowercased()
            .replacingMicro()
            .replacingSuperscriptThree()
        switch s {
        case "ug/m3": self = .microgramsPerCubicMetre
        case "mg/m3": self = .milligramsPerCubicMetre
        case "ppb": self = .ppb
        case "ppm": self = .ppm
        default: return nil
        }
    }

    /// The value in µg/m³; nil when a mixing ratio is given for a particulate (no molecular weight).
    public func toMicrogramsPerCubicMetre(_ value: Double, of pollutant: Pollutant) -> Double? {
        switch self {
        case .microgramsPerCubicMetre: return value
        case .milligramsPerCubicMetre: return value * 1000
        case .ppb, .ppm:
            guard let weight = pollutant.molecularWeight else { return nil }
            let ppb = self == .ppm ? value * 1000 : value
            return ppb * weight / Self.molarVolumeLitres
        }
    }

    /// The inverse of `toMicrogramsPerCubicMetre`, for indices whose tables are in ppb or ppm (US AQI gases).
    public func fromMicrogramsPerCubicMetre(_ value: Double, of pollutant: Pollutant) -> Double? {
        switch self {
        case .microgramsPerCubicMetre: return value
        case .milligramsPerCubicMetre: return value / 1000
        case .ppb, .ppm:
            guard let weight = pollutant.molecularWeight else { return nil }
            let ppb = value * Self.molarVolumeLitres / weight
            return self == .ppm ? ppb / 1000 : ppb
        }
    }
}

extension String {
    fileprivate func replacingMicro() -> String {
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU are both used for "micro".
        String(map { $0 == "\u{00B5}" || $0 == "\u{03BC}" ? "u" : $0 })
    }

    fileprivate func replacingSuperscriptThree() -> String {
        String(map { $0 == "\u{00B3}" ? "3" : $0 })
    }
}

/// The overall index of several sub-indices (the maximum) and the pollutant that sets it.
///
/// Ties are broken by the unrounded sub-index, then by the regulation's table order (PM10 first).
func highestSubIndex(_ subIndices: [Pollutant: ScaledIndex]) -> (index: ScaledIndex, pollutant: Pollutant)? {
    let best = subIndices.min { a, b in
        if a.value.value != b.value.value { return a.value.value > b.value.value }
        if a.value.exact != b.value.exact { return a.value.exact > b.value.exact }
        return a.key < b.key
    }
    return best.map { ($0.value, $0.key) }
}
