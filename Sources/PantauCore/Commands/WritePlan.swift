/// A checked register write: which device, which registers or coil, which words, and the value they mean.
public struct WritePlan: Sendable, Hashable {
    public var device: String
    public var point: PointSpec
    public var value: PointValue
    /// Registers for a holding point; one 0/1 word for a coil.
    public var words: [UInt16]

    public init(device: String, point: PointSpec, value: PointValue, words: [UInt16]) {
        self.device = device
        self.point = point
        self.value = value
        self.words = words
    }

    /// Checks a write against the configuration: the device exists and allows writes, its profile marks the point
    /// writable, and the value has the point's type and lies within its declared range.
    public static func make(device name: String, point pointName: String, value text: String, devices: [DeviceConfig])
        -> Result<WritePlan, CommandRefusal>
    {
        guard let device = devices.first(where: { $0.name == name }) else {
            return .failure(CommandRefusal(.deviceUnknown, "no device '\(name)' on this gateway"))
        }
        guard device.writes else {
            return .failure(
                CommandRefusal(
                    .writesNotAllowed,
                    "device '\(name)' does not allow writes (its configuration has no 'writes: allow')"))
        }
        guard let point = device.profile.point(named: pointName) else {
            return .failure(
                CommandRefusal(
                    .notWritable, "profile '\(device.profile.id)' has no point '\(pointName)'"))
        }
        guard point.writable else {
            return .failure(
                CommandRefusal(
                    .notWritable, "point '\(pointName)' of profile '\(device.profile.id)' is not marked writable"))
        }
        let value: PointValue
        switch Self.value(text, for: point) {
        case .success(let v): value = v
        case .failure(let refusal): return .failure(refusal)
        }
        let words = RegisterEncoder.encode(point: point, value: value)
        return .success(WritePlan(device: name, point: point, value: value, words: words))
    }

    /// The value of `text` for `point`: true/false (or 1/0) for bits; for numbers a finite value within the declared
    /// range whose raw register value is a whole number of the type's range.
    static func value(_ text: String, for point: PointSpec) -> Result<PointValue, CommandRefusal> {
        if point.table.isBitTable || point.type == .bit {
            switch text {
            case "true", "1": return .success(.flag(true))
            case "false", "0": return .success(.flag(false))
            default:
                return .failure(
                    CommandRefusal(.outOfRange, "'\(point.name)' is a bit: the value must be true or false"))
            }
        }
        guard let number = Double(text), number.isFinite else {
            return .failure(CommandRefusal(.outOfRange, "'\(point.name)' needs a number, found '\(text)'"))
        }
        guard let range = point.validRange, range.contains(number) else {
            let declared = point.validRange.map { "\($0.lowerBound) to \($0.upperBound)" } ?? "none"
            return .failure(
                CommandRefusal(
                    .outOfRange, "\(text) is outside the declared range of '\(point.name)' (\(declared) \(point.unit))")
            )
        }
        if point.type == .f32 || point.type == .f64 { return .success(.number(number)) }
        let raw = (number - point.offset) / point.scale
        let rounded = raw.rounded()
        // A value between two raw steps would be written rounded: refuse it rather than write something else.
        guard abs(raw - rounded) <= 1e-9 * max(1, abs(raw)) else {
            return .failure(
                CommandRefusal(
                    .outOfRange,
                    "\(text) is not a whole number of steps of \(point.scale) for '\(point.name)' "
                        + "(\(point.type.rawValue))"
                ))
        }
        let bits = Double(16 * (point.type.registerCount ?? 1))
        let signed = point.type == .i16 || point.type == .i32 || point.type == .i64
        let lower = signed ? -Double.pow2(bits - 1) : 0
        let upper = signed ? Double.pow2(bits - 1) - 1 : Double.pow2(bits) - 1
        guard rounded >= lower, rounded <= upper else {
            return .failure(
                CommandRefusal(
                    .outOfRange, "\(text) does not fit '\(point.name)' (\(point.type.rawValue), scale \(point.scale))"))
        }
        return .success(.number(number))
    }
}

extension Double {
    fileprivate static func pow2(_ exponent: Double) -> Double {
        var result = 1.0
        for _ in 0..<Int(exponent) { result *= 2 }
        return result
    }
}
