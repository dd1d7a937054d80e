/// The inverse of the decoder, for the simulator and tests: engineering value to raw registers.
public enum RegisterEncoder {
    /// The registers (or one 0/1 bit) that decode to `value` for `point` with `decimals` decimal places.
    ///
    /// Integers are rounded to the nearest raw step and clamped to the type's range (NaN becomes 0); floats keep
    /// NaN and infinities so a simulator can send them. A register-table `bit` point gives its register with only
    /// that bit set: OR it with the other bits sharing the register. Strings are cut or padded with NUL to `length`.
    public static func encode(point: PointSpec, value: PointValue, decimals: Int = 0) -> [UInt16] {
        if point.table.isBitTable { return [truth(of: value) ? 1 : 0] }
        switch point.type {
        case .string:
            return textWords(text(of: value), length: point.length, order: point.order)
        case .bit:
            let index = UInt16(clamping: point.bit ?? 0) & 15
            return [truth(of: value) ? 1 << index : 0]
        default:
            if case .integer(let exact) = value, point.scale == 1, decimals == 0, point.offset == 0,
                point.type == .u64 || point.type == .i64
            {
                return words(exactBits(exact, type: point.type, encoding: point.encoding), order: point.order, count: 4)
            }
            let engineering = number(of: value)
            let raw = rawValue(engineering: engineering - point.offset, scale: point.scale, decimals: decimals)
            let bits = bitPattern(raw: raw, type: point.type, encoding: point.encoding)
            return words(bits, order: point.order, count: point.type.registerCount ?? 1)
        }
    }

    /// The bits of an exact integer as a 64-bit type, clamped to its range.
    static func exactBits(_ value: Int128, type: ValueType, encoding: IntegerEncoding) -> UInt64 {
        if encoding == .signMagnitude {
            let magnitude = UInt64(min(value.magnitude, UInt128(Int64.max)))
            return value < 0 ? magnitude | 1 << 63 : magnitude
        }
        if type == .i64 { return UInt64(bitPattern: Int64(clamping: value)) }
        return UInt64(clamping: value)
    }

    /// `(value - offset) / (scale × 10^-decimals)`, mirroring the decoder's exact division for scales like 0.1.
    static func rawValue(engineering: Double, scale: Double, decimals: Int) -> Double {
        let up = RegisterDecoder.powerOfTen(max(decimals, 0))
        let down = RegisterDecoder.powerOfTen(max(-decimals, 0))
        let inverse = (1 / scale).rounded()
        if inverse > 1, inverse * scale == 1 { return engineering * inverse * up / down }
        return engineering * up / (scale * down)
    }

    /// The bits of `raw` as `type`: floats by their IEEE pattern, integers rounded and clamped.
    static func bitPattern(raw: Double, type: ValueType, encoding: IntegerEncoding) -> UInt64 {
        let width = 16 * (type.registerCount ?? 1)
        switch type {
        case .f32: return UInt64(Float(raw).bitPattern)
        case .f64: return raw.bitPattern
        default: break
        }
        let rounded = raw.isNaN ? 0 : raw.rounded(.toNearestOrAwayFromZero)
        if encoding == .signMagnitude {
            let magnitude = clampedUnsigned(abs(rounded), bits: width - 1)
            return rounded < 0 && magnitude != 0 ? magnitude | 1 << UInt64(width - 1) : magnitude
        }
        switch type {
        case .i16, .i32, .i64:
            let limit = powerOfTwo(width - 1)
            let signed: Int64
            if rounded >= limit {
                signed = Int64.max >> Int64(64 - width)
            } else if rounded < -limit {
                signed = Int64.min >> Int64(64 - width)
            } else {
                signed = Int64(rounded)
            }
            return UInt64(bitPattern: signed) & (UInt64.max >> UInt64(64 - width))
        default:
            return clampedUnsigned(rounded, bits: width)
        }
    }

    /// `value` clamped into an unsigned integer of `bits` bits, without the traps of `UInt64(_:)`.
    private static func clampedUnsigned(_ value: Double, bits: Int) -> UInt64 {
        let maximum = UInt64.max >> UInt64(64 - bits)
        if value <= 0 { return 0 }
        if value >= powerOfTwo(bits) { return maximum }
        return min(UInt64(value), maximum)
    }

    private static func powerOfTwo(_ exponent: Int) -> Double {
        var result = 1.0
        for _ in 0..<exponent { result *= 2 }
        return result
    }

    /// Spreads the value's bytes over big-endian words in the wire order `order` names.
    static func words(_ bits: UInt64, order: ByteOrder, count: Int) -> [UInt16] {
        let byteCount = count * 2
        var words = [UInt16](repeating: 0, count: count)
        for (position, significance) in order.significanceAtWirePosition.enumerated() where position < byteCount {
            let byte = UInt16(truncatingIfNeeded: bits >> UInt64(8 * (byteCount - 1 - significance))) & 0xFF
            words[position / 2] |= position % 2 == 0 ? byte << 8 : byte
        }
        return words
    }

    private static func textWords(_ text: String, length: Int, order: ByteOrder) -> [UInt16] {
        var bytes = text.unicodeScalars.prefix(length * 2).map { $0.isASCII ? UInt8($0.value) : UInt8(ascii: "?") }
        bytes += [UInt8](repeating: 0, count: length * 2 - bytes.count)
        let swapped = order.significanceAtWirePosition == [1, 0]
        return (0..<length).map { i in
            let first = UInt16(bytes[2 * i])
            let second = UInt16(bytes[2 * i + 1])
            return swapped ? second << 8 | first : first << 8 | second
        }
    }

    private static func truth(of value: PointValue) -> Bool {
        switch value {
        case .flag(let flag): return flag
        case .number(let number): return number != 0
        case .integer(let integer): return integer != 0
        case .text(let text): return ["1", "true", "on"].contains(text.lowercased())
        }
    }

    private static func number(of value: PointValue) -> Double {
        switch value {
        case .number(let number): return number
        case .integer(let integer): return Double(integer)
        case .flag(let flag): return flag ? 1 : 0
        case .text(let text): return Double(text) ?? .nan
        }
    }

    private static func text(of value: PointValue) -> String {
        switch value {
        case .text(let text): return text
        case .number(let number): return String(number)
        case .integer(let integer): return String(integer)
        case .flag(let flag): return flag ? "1" : "0"
        }
    }
}
