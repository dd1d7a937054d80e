import PantauCore
import PantauModbus
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// One read transaction of a poll and how it went.
public struct RequestOutcome: Sendable {
    public var request: ReadRequest
    public var responseMs: Double
    /// Nil when the read returned data.
    public var error: ModbusError?
}

/// One point of a poll: the reading, why it failed if it did, its raw words and the request that read them.
public struct PointOutcome: Sendable {
    public var point: PointSpec
    public var reading: Reading
    public var failure: DecodeFailure?
    /// The point's words as read (0/1 for a coil or discrete input); fewer than its span when a read failed.
    public var raw: [UInt16]
    /// Index into `DeviceSnapshot.requests` of the request that covers the point.
    public var request: Int?
}

/// Everything one poll of one device showed, for `pantau read`.
public struct DeviceSnapshot: Sendable {
    public var profile: String
    public var unit: Int
    public var acquiredAt: UnixMillis
    public var requests: [RequestOutcome]
    public var points: [PointOutcome]

    /// Whether every request failed, i.e. nothing was heard from the device.
    public var unreachable: Bool { !requests.isEmpty && requests.allSatisfy { $0.error != nil } }
}

/// Polls a device once the way the gateway does (the same read plan and decoder), keeping every detail.
public enum DeviceReader {
    /// Reads every request of the profile's plan once (no retries: a technician wants to see each failure) and
    /// decodes the points. The transport must be connected; `timing` is the device's (profile or config).
    public static func poll(
        _ transport: any ModbusTransport, profile: DeviceProfile, unit: Int, timing: ProfileTiming, device: String,
        clock: any GatewayClock = SystemClock()
    ) -> DeviceSnapshot {
        let plan = ReadPlanner.plan(points: profile.points, timing: timing)
        var image = RegisterImage()
        var requests: [RequestOutcome] = []
        var unitError: ModbusError?
        do {
            try transport.setUnit(unit)
        } catch {
            unitError = error
        }
        for (index, request) in plan.enumerated() {
            if index > 0, timing.interRequestDelayMs > 0 { usleep(UInt32(timing.interRequestDelayMs) * 1000) }
            let start = clock.monotonicNanos()
            var failure = unitError
            if failure == nil {
                do {
                    image.store(try transport.read(request), table: request.table, at: request.address)
                } catch {
                    failure = error
                    if error.class == .link { transport.flush() }
                }
            }
            let ms = Double(clock.monotonicNanos() &- start) / 1_000_000
            requests.append(RequestOutcome(request: request, responseMs: ms, error: failure))
        }
        let acquiredAt = clock.now()
        let decoded = RegisterDecoder.decodeWithFailures(
            profile: profile, image: image, device: device, acquiredAt: acquiredAt)
        let points = zip(profile.points, decoded).map { point, result in
            let raw = (point.address..<(point.address + point.span)).compactMap { image[point.table, $0] }
            return PointOutcome(
                point: point, reading: result.reading, failure: result.failure, raw: raw,
                request: plan.firstIndex { $0.covers(point) })
        }
        return DeviceSnapshot(
            profile: profile.id, unit: unit, acquiredAt: acquiredAt, requests: requests, points: points)
    }
}

/// How diagnostic commands print values and registers.
public enum DiagnosticsFormat {
    /// A register as `0x04D2`.
    public static func hex(_ word: UInt16) -> String {
        let digits = String(word, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: 4 - digits.count) + digits
    }

    /// A value as a technician reads it: whole numbers without `.0`, text in quotes, `-` when there is none.
    public static func value(_ value: PointValue?) -> String {
        switch value {
        case .none: return "-"
        case .number(let n): return number(n)
        case .integer(let i): return String(i)
        case .flag(let b): return b ? "true" : "false"
        case .text(let t): return "\"\(t)\""
        }
    }

    /// A number in its shortest exact form, integers without a fraction.
    public static func number(_ n: Double) -> String {
        if n.isFinite, n == n.rounded(), abs(n) < 1e15 { return String(Int64(n)) }
        return "\(n)"
    }

    /// A count with its noun, `1 device` or `3 devices` (`plural` where an `s` is not enough: `2 buses`).
    public static func counted(_ n: Int, _ noun: String, plural: String? = nil) -> String {
        "\(n) \(n == 1 ? noun : plural ?? noun + "s")"
    }

    /// Milliseconds with one decimal.
    public static func milliseconds(_ ms: Double) -> String {
        let tenths = Int((ms * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) ms"
    }
}
