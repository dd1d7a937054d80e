import PantauCore

#if canImport(Glibc)
    import Glibc
#endif

/// A value that changes with time, in a point's engineering unit, for the simulator.
public struct SimulatedSignal: Sendable {
    public let value: @Sendable (_ time: UnixMillis) -> Double

    public init(_ value: @escaping @Sendable (_ time: UnixMillis) -> Double) { self.value = value }

    public static func constant(_ v: Double) -> SimulatedSignal { SimulatedSignal { _ in v } }

    /// A daily cosine between `low` and `high` peaking at `peakHour` local time, plus bounded noise.
    /// The same `seed` gives the same noise pattern, so related quantities (pm10 and pm2_5) move together.
    public static func daily(
        low: Double, high: Double, peakHour: Double, noise: Double = 0, seed: UInt64 = 0, utcOffsetHours: Double = 7
    ) -> SimulatedSignal {
        SimulatedSignal { time in
            let hours = Double(time) / 3_600_000 + utcOffsetHours
            let phase = (hours - peakHour) / 24 * 2 * Double.pi
            let base = low + (high - low) * (0.5 + 0.5 * cos(phase))
            return base + noise * unitNoise(time: time, seed: seed)
        }
    }

    /// Starts at `start` at time `from` and changes by `perMinute` (a river rising).
    public static func ramp(start: Double, perMinute: Double, from: UnixMillis) -> SimulatedSignal {
        SimulatedSignal { time in start + perMinute * Double(time - from) / 60_000 }
    }

    /// A counter from 0 at `from`, counting whole steps at `perMinute` (a tipping bucket), wrapping at `modulus`.
    public static func counter(perMinute: Double, from: UnixMillis, modulus: Double = 65536) -> SimulatedSignal {
        SimulatedSignal { time in
            (perMinute * Double(max(0, time - from)) / 60_000).rounded(.down).truncatingRemainder(dividingBy: modulus)
        }
    }

    /// A scripted series: each value holds from its time until the next; before the first, the first value.
    public static func series(_ steps: [(at: UnixMillis, value: Double)]) -> SimulatedSignal {
        let sorted = steps.sorted { $0.at < $1.at }
        return SimulatedSignal { time in
            sorted.last { $0.at <= time }?.value ?? sorted.first?.value ?? 0
        }
    }

    /// This signal times `factor`.
    public func scaled(_ factor: Double) -> SimulatedSignal {
        let base = value
        return SimulatedSignal { base($0) * factor }
    }

    /// Deterministic noise in -1...1, constant for 10 s so successive polls see a plausible, not jittery, series.
    static func unitNoise(time: UnixMillis, seed: UInt64) -> Double {
        var x = UInt64(bitPattern: time / 10_000) &* 0x9E37_79B9_7F4A_7C15 ^ seed &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 31
        x = x &* 0x94D0_49BB_1331_11EB
        x ^= x >> 29
        return Double(x % 2_000_001) / 1_000_000 - 1
    }
}

extension SimulatedSignal {
    /// The plausible default for a point of a tropical city's sensors, by quantity, in the point's unit.
    /// `riverLevelMeters` is where a water level starts at `start`; it then rises 3 cm per minute.
    public static func plausible(for point: PointSpec, start: UnixMillis, riverLevelMeters: Double) -> SimulatedSignal {
        let unit = point.unit
        let signal: SimulatedSignal
        switch point.quantity {
        case "pm2_5": signal = .daily(low: 15, high: 80, peakHour: 7, noise: 3, seed: 25).inMass(unit)
        case "pm10": signal = .daily(low: 15, high: 80, peakHour: 7, noise: 3, seed: 25).scaled(1.6).inMass(unit)
        case "pm1": signal = .daily(low: 15, high: 80, peakHour: 7, noise: 3, seed: 25).scaled(0.7).inMass(unit)
        case "co": signal = gas(ppb: 300...2000, microgram: 400...2300, peakHour: 8, unit: unit)
        case "no2": signal = gas(ppb: 10...60, microgram: 20...110, peakHour: 8, unit: unit)
        case "so2": signal = gas(ppb: 2...20, microgram: 5...50, peakHour: 9, unit: unit)
        case "o3": signal = gas(ppb: 10...80, microgram: 20...160, peakHour: 13, unit: unit)
        case "no", "nh3": signal = gas(ppb: 5...50, microgram: 6...60, peakHour: 8, unit: unit)
        case "h2s": signal = gas(ppb: 1...10, microgram: 1...14, peakHour: 8, unit: unit)
        case "hc": signal = gas(ppb: 80...250, microgram: 50...150, peakHour: 8, unit: unit)
        case "co2": signal = gas(ppb: 420_000...600_000, microgram: 750_000...1_080_000, peakHour: 8, unit: unit)
        case "tvoc": signal = gas(ppb: 100...500, microgram: 300...1500, peakHour: 8, unit: unit)
        case "temperature": signal = .daily(low: 26, high: 33, peakHour: 14, noise: 0.2, seed: 7)
        case "relative_humidity": signal = .daily(low: 60, high: 90, peakHour: 5, noise: 1, seed: 8)
        case "pressure": signal = .daily(low: 1008, high: 1012, peakHour: 10, seed: 9).scaled(pressureFactor(unit))
        case "water_level":
            signal = .ramp(start: riverLevelMeters, perMinute: 0.03, from: start).scaled(lengthFactor(unit))
        case "distance":
            // An ultrasonic sensor 10 m above the river bed sees the water come closer as it rises.
            let level = SimulatedSignal.ramp(start: riverLevelMeters, perMinute: 0.03, from: start)
            signal = SimulatedSignal { 10 - level.value($0) }.scaled(lengthFactor(unit))
        case "rain_tips", "counter": signal = .counter(perMinute: 2, from: start)
        case "rain": signal = .counter(perMinute: 2, from: start).scaled(0.2)
        case "rain_intensity": signal = .daily(low: 0, high: 24, peakHour: 16, seed: 11)
        case "wind_speed": signal = .daily(low: 1, high: 5, peakHour: 15, noise: 0.5, seed: 12)
        case "wind_direction": signal = .constant(225)
        case "illuminance": signal = .daily(low: 0, high: 80_000, peakHour: 12, seed: 13)
        case "noise": signal = .daily(low: 45, high: 70, peakHour: 17, noise: 2, seed: 14)
        case "voltage": signal = .constant(12.6)
        case "current": signal = .constant(12)
        case "status", "decimals", "unit_code": signal = .constant(0)
        default:
            let mid = point.validRange.map { ($0.lowerBound + $0.upperBound) / 2 } ?? 0
            signal = .constant(mid)
        }
        guard let range = point.validRange else { return signal }
        return SimulatedSignal { min(max(signal.value($0), range.lowerBound), range.upperBound) }
    }

    private static func gas(
        ppb: ClosedRange<Double>, microgram: ClosedRange<Double>, peakHour: Double, unit: String
    ) -> SimulatedSignal {
        let (range, factor): (ClosedRange<Double>, Double)
        switch unit {
        case "ppm": (range, factor) = (ppb, 0.001)
        case "ug/m3": (range, factor) = (microgram, 1)
        case "mg/m3": (range, factor) = (microgram, 0.001)
        default: (range, factor) = (ppb, 1)
        }
        let width = range.upperBound - range.lowerBound
        return SimulatedSignal.daily(
            low: range.lowerBound, high: range.upperBound, peakHour: peakHour, noise: width * 0.03,
            seed: UInt64(range.upperBound)
        ).scaled(factor)
    }

    private func inMass(_ unit: String) -> SimulatedSignal { unit == "mg/m3" ? scaled(0.001) : self }

    private static func lengthFactor(_ unit: String) -> Double {
        switch unit {
        case "cm": return 100
        case "mm": return 1000
        default: return 1
        }
    }

    private static func pressureFactor(_ unit: String) -> Double {
        switch unit {
        case "Pa": return 100
        case "kPa": return 0.1
        default: return 1
        }
    }
}
