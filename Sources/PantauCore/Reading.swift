/// How much a reading can be trusted. Only `good` readings feed aggregates and indices.
public enum Quality: String, Sendable, Hashable, CaseIterable {
    /// Decoded from a valid reply and inside the point's valid range.
    case good
    /// Decoded from a valid reply but outside the point's valid range (a sensor fault or a real extreme).
    case outOfRange = "out_of_range"
    /// The device did not answer, answered with an exception, or the reply could not be decoded.
    case deviceError = "device_error"
}

/// The value of one point, as decoded.
public enum PointValue: Sendable, Hashable {
    case number(Double)
    /// A 64-bit integer beyond ±2^53, which a Double would round: kept exact to the wire. Integers a Double holds
    /// exactly stay `.number` (see `exact(_:)`).
    case integer(Int128)
    case text(String)
    case flag(Bool)

    /// An exact integer: `.number` while a Double holds it exactly, `.integer` beyond ±2^53.
    public static func exact(_ value: Int128) -> PointValue {
        let limit: Int128 = 1 << 53
        return (-limit...limit).contains(value) ? .number(Double(value)) : .integer(value)
    }

    /// The numeric view used by aggregates: flags are 0 or 1, text has none, a big integer is rounded.
    public var numeric: Double? {
        switch self {
        case .number(let v): return v
        case .integer(let i): return Double(i)
        case .flag(let b): return b ? 1 : 0
        case .text: return nil
        }
    }
}

/// One acquired value of one point of one device. Timestamped when acquired, never when sent.
public struct Reading: Sendable, Hashable {
    public var device: String
    public var point: String
    public var quantity: String
    public var unit: String
    /// Nil when `quality` is `.deviceError`: a missing value is never invented.
    public var value: PointValue?
    public var quality: Quality
    public var acquiredAt: UnixMillis

    public init(
        device: String, point: String, quantity: String, unit: String,
        value: PointValue?, quality: Quality, acquiredAt: UnixMillis
    ) {
        self.device = device
        self.point = point
        self.quantity = quantity
        self.unit = unit
        self.value = value
        self.quality = quality
        self.acquiredAt = acquiredAt
    }
}

/// The readings of one device from one poll: what a bus poller hands over after each device transaction set.
public struct DevicePoll: Sendable {
    public var device: String
    public var readings: [Reading]
    /// Set when the whole poll failed (timeout, exception, link error); `readings` then carry `.deviceError`.
    /// The bus's own error value (a `ModbusError`), kept typed until a log line or a payload prints it.
    public var error: (any Error & Sendable)?
    public var acquiredAt: UnixMillis

    public init(device: String, readings: [Reading], error: (any Error & Sendable)?, acquiredAt: UnixMillis) {
        self.device = device
        self.readings = readings
        self.error = error
        self.acquiredAt = acquiredAt
    }
}
