@testable import PantauCore

/// 2026-03-02 00:00:00 UTC, a midnight, so hour and minute boundaries are easy to read in tests.
let envMidnight: UnixMillis = 1_772_409_600_000
let envMinute: Int64 = 60_000
let envHour: Int64 = 3_600_000

func envReading(
    _ value: Double?, at time: UnixMillis, device: String = "dev-1", point: String = "p", quantity: String = "q",
    unit: String = "", quality: Quality = .good
) -> Reading {
    Reading(
        device: device, point: point, quantity: quantity, unit: unit, value: value.map { .number($0) },
        quality: value == nil && quality == .good ? .deviceError : quality, acquiredAt: time)
}

func envApproximately(_ a: Double?, _ b: Double, tolerance: Double = 1e-9) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}
