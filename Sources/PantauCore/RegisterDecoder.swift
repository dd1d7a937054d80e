/// Raw register and bit contents of one device, by table and 0-based address, as read in one poll.
public struct RegisterImage: Sendable, Hashable {
    public var tables: [RegisterTable: [Int: UInt16]]

    public init(_ tables: [RegisterTable: [Int: UInt16]] = [:]) { self.tables = tables }

    public subscript(table: RegisterTable, address: Int) -> UInt16? {
        get { tables[table]?[address] }
        set { tables[table, default: [:]][address] = newValue }
    }

    /// Stores `words` starting at `address`.
    public mutating func store(_ words: [UInt16], table: RegisterTable, at address: Int) {
        // The table is taken out while it is filled: one lookup per block, not two per word, and no copy.
        var registers = tables.removeValue(forKey: table) ?? [:]
        registers.reserveCapacity(registers.count + words.count)
        for (i, w) in words.enumerated() { registers[address + i] = w }
        tables[table] = registers
    }
}

/// Why one point could not be turned into a value: the point, where its registers are, and what was read.
public struct DecodeFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, for callers that react differently (a missing register is a read problem, NaN a device one).
    public enum Code: String, Sendable, Hashable {
        /// Some register of the point is not in the image (not read, or the read failed).
        case missingRegisters = "missing_registers"
        /// The number of words handed over does not match the point's size.
        case wrongWordCount = "wrong_word_count"
        /// The point's byte order does not have one letter per byte of its type.
        case orderMismatch = "order_mismatch"
        /// `bit` is missing or outside 0...15.
        case invalidBitIndex = "invalid_bit_index"
        /// The float is NaN or infinite, or scaling overflowed: devices send NaN for "no measurement".
        case notFinite = "not_finite"
        /// The point named by `decimals_from` is missing, failed, or holds no sensible integer.
        case invalidDecimals = "invalid_decimals"
    }

    public var code: Code
    public var point: String
    public var table: RegisterTable
    public var address: Int
    /// The raw words as read (empty when they were missing).
    public var words: [UInt16]
    public var message: String

    public init(
        code: Code, point: String, table: RegisterTable, address: Int, words: [UInt16], message: String
    ) {
        self.code = code
        self.point = point
        self.table = table
        self.address = address
        self.words = words
        self.message = message
    }

    init(_ code: Code, _ point: PointSpec, _ words: [UInt16], _ reason: String) {
        let raw = words.isEmpty ? "" : ", raw words [\(words.map(hex4).joined(separator: ", "))]"
        self.init(
            code: code, point: point.name, table: point.table, address: point.address, words: words,
            message: "point '\(point.name)' (\(point.table.rawValue) \(point.address)+\(point.span)): \(reason)\(raw)"
        )
    }

    public var description: String { message }
}

/// Turns raw registers into engineering values. Written in Swift from bit patterns, never with libmodbus helpers.
public enum RegisterDecoder {
    /// Decodes every point of `profile` present in `image`. A point whose registers are missing is `.deviceError`.
    public static func decode(
        profile: DeviceProfile, image: RegisterImage, device: String, acquiredAt: UnixMillis
    ) -> [Reading] {
        decodeWithFailures(profile: profile, image: image, device: device, acquiredAt: acquiredAt).map(\.reading)
    }

    /// Like `decode`, with the reason of every `.deviceError` reading, for logs and `pantau read`.
    public static func decodeWithFailures(
        profile: DeviceProfile, image: RegisterImage, device: String, acquiredAt: UnixMillis
    ) -> [(reading: Reading, failure: DecodeFailure?)] {
        var session = DecodeSession(profile: profile, image: image)
        return profile.points.map { point in
            let result = session.value(of: point)
            var value: PointValue?
            var quality = Quality.deviceError
            var failure: DecodeFailure?
            switch result {
            case .success(let decoded):
                value = decoded
                quality = .good
                if let range = point.validRange, let number = decoded.numeric, !range.contains(number) {
                    quality = .outOfRange
                }
            case .failure(let error):
                failure = error
            }
            let reading = Reading(
                device: device, point: point.name, quantity: point.quantity, unit: point.unit,
                value: value, quality: quality, acquiredAt: acquiredAt
            )
            return (reading, failure)
        }
    }

    /// Decodes one point from its words (one 0/1 word for coil and discrete points), applying scale, `decimals`
    /// and offset. No range check: a value outside the valid range is still a value.
    public static func decodeValue(
        point: PointSpec, words: [UInt16], decimals: Int = 0
    ) -> Result<PointValue, DecodeFailure> {
        guard words.count == point.span else {
            return failure(.wrongWordCount, point, words, "expected \(point.span) word(s), got \(words.count)")
        }
        if point.table.isBitTable { return .success(.flag(words[0] != 0)) }
        switch point.type {
        case .string:
            return .success(.text(text(from: words, order: point.order)))
        case .bit:
            guard let index = point.bit, (0...15).contains(index) else {
                let shown = point.bit.map(String.init) ?? "missing"
                return failure(.invalidBitIndex, point, words, "bit index \(shown) not in 0...15")
            }
            return .success(.flag(words[0] >> UInt16(index) & 1 == 1))
        default:
            guard point.order.significanceAtWirePosition.count == words.count * 2 else {
                let reason = "byte order \(point.order) does not fit \(point.type.rawValue) (\(words.count * 2) bytes)"
                return failure(.orderMismatch, point, words, reason)
            }
            let bits = assemble(words, order: point.order)
            // An unscaled 64-bit integer is kept exact: a Double would round it beyond 2^53.
            if point.scale == 1, decimals == 0, point.offset == 0,
                let exact = exactInteger(bits: bits, type: point.type, encoding: point.encoding)
            {
                return .success(.exact(exact))
            }
            let raw = rawNumber(bits: bits, type: point.type, encoding: point.encoding)
            guard raw.isFinite else {
                return failure(.notFinite, point, words, "\(point.type.rawValue) is \(raw)")
            }
            let value = engineering(raw: raw, scale: point.scale, decimals: decimals) + point.offset
            guard value.isFinite else {
                return failure(.notFinite, point, words, "scaled value \(value) is not finite")
            }
            return .success(.number(value))
        }
    }

    /// Every reading of 1, 2 or 4 registers as each numeric type of that width in each standard byte order, for a
    /// technician hunting an undocumented register. Unscaled, two's complement; non-finite floats are kept so that
    /// every row is there. Other word counts give no interpretation.
    public static func interpretations(words: [UInt16]) -> [(type: ValueType, order: ByteOrder, value: PointValue)] {
        let types: [ValueType]
        switch words.count {
        case 1: types = [.u16, .i16]
        case 2: types = [.u32, .i32, .f32]
        case 4: types = [.u64, .i64, .f64]
        default: return []
        }
        return types.flatMap { type in
            ByteOrder.standard(byteCount: words.count * 2).map { order in
                let bits = assemble(words, order: order)
                if let exact = exactInteger(bits: bits, type: type, encoding: .twosComplement) {
                    return (type, order, PointValue.exact(exact))
                }
                return (type, order, PointValue.number(rawNumber(bits: bits, type: type, encoding: .twosComplement)))
            }
        }
    }

    /// The value's bytes in significance order, gathered from big-endian words in wire order.
    static func assemble(_ words: [UInt16], order: ByteOrder) -> UInt64 {
        let byteCount = words.count * 2
        var bits: UInt64 = 0
        for (position, significance) in order.significanceAtWirePosition.enumerated() {
            let word = words[position / 2]
            let byte = position % 2 == 0 ? word >> 8 : word & 0xFF
            bits |= UInt64(byte) << UInt64(8 * (byteCount - 1 - significance))
        }
        return bits
    }

    /// The exact integer `bits` stands for as a 64-bit integer type; nil for other types.
    static func exactInteger(bits: UInt64, type: ValueType, encoding: IntegerEncoding) -> Int128? {
        guard type == .u64 || type == .i64 else { return nil }
        if encoding == .signMagnitude {
            let magnitude = Int128(bits & (UInt64.max >> 1))
            return bits >> 63 == 1 ? -magnitude : magnitude
        }
        return type == .i64 ? Int128(Int64(bitPattern: bits)) : Int128(bits)
    }

    /// The number `bits` stands for as `type` (which fixes the width), before scaling.
    static func rawNumber(bits: UInt64, type: ValueType, encoding: IntegerEncoding) -> Double {
        let width = 16 * (type.registerCount ?? 1)
        switch type {
        case .f32: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits)))
        case .f64: return Double(bitPattern: bits)
        default: break
        }
        // A profile that says sign_magnitude means the top bit is a sign whatever the declared signedness.
        if encoding == .signMagnitude {
            let magnitude = Double(bits & (UInt64.max >> UInt64(65 - width)))
            let negative = bits >> UInt64(width - 1) & 1 == 1
            return negative && magnitude != 0 ? -magnitude : magnitude
        }
        switch type {
        case .i16, .i32, .i64:
            let shift = Int64(64 - width)
            return Double(Int64(bitPattern: bits << UInt64(shift)) >> shift)
        default:
            return Double(bits)
        }
    }

    static func failure(
        _ code: DecodeFailure.Code, _ point: PointSpec, _ words: [UInt16], _ reason: String
    ) -> Result<PointValue, DecodeFailure> {
        .failure(DecodeFailure(code, point, words, reason))
    }

    /// `raw × scale × 10^-decimals`, dividing by exact powers of ten where it can so 1234 × 0.01 prints as 12.34.
    static func engineering(raw: Double, scale: Double, decimals: Int) -> Double {
        var divisor = powerOfTen(max(decimals, 0))
        var factor = scale * powerOfTen(max(-decimals, 0))
        let inverse = (1 / scale).rounded()
        if inverse > 1, inverse * scale == 1 {
            divisor *= inverse
            factor = powerOfTen(max(-decimals, 0))
        }
        return raw * factor / divisor
    }

    static func powerOfTen(_ exponent: Int) -> Double {
        var result = 1.0
        for _ in 0..<exponent { result *= 10 }
        return result
    }

    /// ASCII, two characters per register (high byte first unless the order is `BA`), trailing NUL and blanks cut.
    static func text(from words: [UInt16], order: ByteOrder) -> String {
        let swapped = order.significanceAtWirePosition == [1, 0]
        var bytes: [UInt8] = []
        for word in words {
            let high = UInt8(word >> 8)
            let low = UInt8(word & 0xFF)
            bytes += swapped ? [low, high] : [high, low]
        }
        while let last = bytes.last, last == 0 || last == 0x20 { bytes.removeLast() }
        return String(String.UnicodeScalarView(bytes.map { $0 < 0x80 ? Unicode.Scalar($0) : "\u{FFFD}" }))
    }
}

extension ByteOrder {
    /// The byte orders devices actually use for a value of `byteCount` bytes (2, 4 or 8), big-endian first.
    public static func standard(byteCount: Int) -> [ByteOrder] {
        let names: [String]
        switch byteCount {
        case 2: names = ["AB", "BA"]
        case 4: names = ["ABCD", "CDAB", "BADC", "DCBA"]
        case 8: names = ["ABCDEFGH", "HGFEDCBA", "GHEFCDAB", "BADCFEHG"]
        default: names = []
        }
        return names.compactMap { ByteOrder($0, byteCount: byteCount) }
    }
}

/// One decode of one image: remembers results so a decimals point is decoded once, and catches reference cycles.
private struct DecodeSession {
    let profile: DeviceProfile
    let image: RegisterImage
    var results: [String: Result<PointValue, DecodeFailure>] = [:]
    var inProgress: Set<String> = []
    /// Only a point whose decimals come from another point needs results remembered by name (and a cycle check);
    /// most profiles have none, and then each point is decoded once without the two hash tables.
    let remembers: Bool

    init(profile: DeviceProfile, image: RegisterImage) {
        self.profile = profile
        self.image = image
        remembers = profile.points.contains { $0.decimalsFrom != nil }
    }

    mutating func value(of point: PointSpec) -> Result<PointValue, DecodeFailure> {
        guard remembers else { return compute(point) }
        if let done = results[point.name] { return done }
        inProgress.insert(point.name)
        let result = compute(point)
        inProgress.remove(point.name)
        results[point.name] = result
        return result
    }

    private mutating func compute(_ point: PointSpec) -> Result<PointValue, DecodeFailure> {
        var words: [UInt16] = []
        words.reserveCapacity(point.span)
        // The point's table once, then one lookup per word.
        let registers = image.tables[point.table] ?? [:]
        for address in point.address..<(point.address + point.span) {
            guard let word = registers[address] else {
                let reason = "\(point.table.rawValue) \(address) was not read (read failed or not in the plan)"
                return RegisterDecoder.failure(.missingRegisters, point, words, reason)
            }
            words.append(word)
        }
        var decimals = 0
        if let source = point.decimalsFrom {
            switch decimalPlaces(from: source) {
            case .success(let places): decimals = places
            case .failure(let problem): return RegisterDecoder.failure(.invalidDecimals, point, words, problem.reason)
            }
        }
        return RegisterDecoder.decodeValue(point: point, words: words, decimals: decimals)
    }

    private mutating func decimalPlaces(from name: String) -> Result<Int, DecimalsProblem> {
        guard let source = profile.point(named: name) else {
            return .failure(DecimalsProblem("decimals_from names '\(name)', which is not a point of the profile"))
        }
        guard !inProgress.contains(name) else {
            return .failure(DecimalsProblem("decimals_from '\(name)' refers back to this point (a cycle)"))
        }
        switch value(of: source) {
        case .failure(let failure):
            return .failure(DecimalsProblem("decimals point failed: \(failure.message)"))
        case .success(let decoded):
            // More places than a double holds digits means a corrupt register, not a setting.
            let limit = 15.0
            guard let places = decoded.numeric, places.rounded() == places, (-limit...limit).contains(places) else {
                let shown = decoded.numeric.map { "\($0)" } ?? "text"
                return .failure(DecimalsProblem("decimals point '\(name)' holds \(shown), not an integer within ±15"))
            }
            return .success(Int(places))
        }
    }
}

private struct DecimalsProblem: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

private func hex4(_ word: UInt16) -> String {
    let digits = String(word, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: 4 - digits.count) + digits
}
