import PantauCore
import Testing

/// A small deterministic generator, so a failing property case is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Every permutation of `letters`, as byte orders: all 24 orders of a 32-bit value, both of a 16-bit one.
private func allOrders(byteCount: Int) -> [ByteOrder] {
    func permutations(_ items: [Character]) -> [[Character]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { i in
            var rest = items
            let first = rest.remove(at: i)
            return permutations(rest).map { [first] + $0 }
        }
    }
    return permutations(Array("ABCD".prefix(byteCount))).map { ByteOrder(String($0), byteCount: byteCount)! }
}

/// Orders to try for a type: every permutation up to 4 bytes; for 8 bytes the standard four and a few odd ones.
private func orders(for type: ValueType) -> [ByteOrder] {
    let bytes = (type.registerCount ?? 1) * 2
    if bytes <= 4 { return allOrders(byteCount: bytes) }
    return ByteOrder.standard(byteCount: 8) + ["CDABGHEF", "EFGHABCD", "DCBAHGFE"].map { ByteOrder($0, byteCount: 8)! }
}

/// The raw integer range the property test draws from: the full type where a double holds it exactly.
private func rawRange(_ type: ValueType, _ encoding: IntegerEncoding) -> ClosedRange<Double> {
    let width = min(16 * (type.registerCount ?? 1), 40)
    let top = Double(1 << (width - 1))
    if encoding == .signMagnitude { return -(top - 1)...(top - 1) }
    switch type {
    case .u16, .u32, .u64: return 0...(2 * top - 1)
    default: return -top...(top - 1)
    }
}

private struct PropertyCase: CustomTestStringConvertible, Sendable {
    var type: ValueType
    var encoding: IntegerEncoding
    var testDescription: String { "\(type.rawValue) \(encoding.rawValue)" }
}

private let propertyCases: [PropertyCase] =
    [ValueType.u16, .i16, .u32, .i32, .u64, .i64].flatMap {
        [PropertyCase(type: $0, encoding: .twosComplement), PropertyCase(type: $0, encoding: .signMagnitude)]
    } + [PropertyCase(type: .f32, encoding: .twosComplement), PropertyCase(type: .f64, encoding: .twosComplement)]

private let scalings: [(scale: Double, offset: Double, decimals: Int)] = [
    (1, 0, 0), (0.1, 0, 0), (0.01, -40, 0), (2.5, 3, 0), (1, 0, 2), (0.1, 10, 1), (1, 0, -1),
]

@Suite struct EncoderTests {
    @Test(arguments: wireCases.filter { $0.type != .bit || $0.expected == .flag(true) })
    func encodesKnownWireBytes(_ row: WireCase) {
        #expect(RegisterEncoder.encode(point: row.point, value: row.expected) == row.words)
    }

    @Test(arguments: propertyCases)
    fileprivate func encodeThenDecodeGivesTheValueBack(_ row: PropertyCase) throws {
        // A seed per row that is stable across runs (String.hashValue is not).
        let seed = row.testDescription.unicodeScalars.reduce(UInt64(17)) { $0 &* 31 &+ UInt64($1.value) }
        var random = SplitMix64(seed: seed)
        let isFloat = row.type == .f32 || row.type == .f64
        for order in orders(for: row.type) {
            for scaling in scalings {
                let step = scaling.scale / pow10(scaling.decimals)
                let spec = PointSpec(
                    name: "v", quantity: "counter", table: .holding, address: 0, type: row.type, order: order,
                    encoding: row.encoding, scale: scaling.scale, offset: scaling.offset
                )
                for _ in 0..<20 {
                    let value: Double
                    if isFloat {
                        value = Double.random(in: -1e6...1e6, using: &random)
                    } else {
                        let range = rawRange(row.type, row.encoding)
                        let raw = Double(
                            Int64.random(in: Int64(range.lowerBound)...Int64(range.upperBound), using: &random))
                        // Off the grid by less than half a step, so rounding to nearest is exercised too.
                        value = raw * step + scaling.offset + Double.random(in: -0.45...0.45, using: &random) * step
                    }
                    let words = RegisterEncoder.encode(point: spec, value: .number(value), decimals: scaling.decimals)
                    let decoded = try RegisterDecoder.decodeValue(point: spec, words: words, decimals: scaling.decimals)
                        .get().numeric!
                    let precision = row.type == .f32 ? 1e-6 : 1e-12
                    let tolerance = isFloat ? abs(value) * precision + 1e-9 : step / 2 + abs(value) * 1e-15
                    #expect(
                        abs(decoded - value) <= tolerance,
                        "\(row.type) \(order) scale \(scaling) value \(value) words \(words) decoded \(decoded)"
                    )
                }
            }
        }
    }

    @Test(arguments: [
        (ValueType.i16, IntegerEncoding.twosComplement, 40000.0, [UInt16(0x7FFF)]),
        (.i16, .twosComplement, -40000, [0x8000]),
        (.u16, .twosComplement, -5, [0x0000]),
        (.u16, .twosComplement, 1e9, [0xFFFF]),
        (.i16, .signMagnitude, -5, [0x8005]),
        (.i16, .signMagnitude, -40000, [0xFFFF]),
        (.i16, .twosComplement, -2.5, [0xFFFD]),
        (.u32, .twosComplement, 1e20, [0xFFFF, 0xFFFF]),
        (.i64, .twosComplement, -1e30, [0x8000, 0x0000, 0x0000, 0x0000]),
        (.u64, .twosComplement, 1e30, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]),
        (.i32, .twosComplement, .nan, [0x0000, 0x0000]),
    ])
    func integersRoundAndClamp(_ type: ValueType, _ encoding: IntegerEncoding, _ value: Double, _ words: [UInt16]) {
        let spec = PointSpec(
            name: "x", quantity: "counter", table: .holding, address: 0, type: type, encoding: encoding)
        #expect(RegisterEncoder.encode(point: spec, value: .number(value)) == words)
    }

    @Test func nanFloatEncodesSoTheDecoderRejectsIt() {
        let spec = PointSpec(name: "pm", quantity: "pm2_5", table: .input, address: 0, type: .f32)
        let words = RegisterEncoder.encode(point: spec, value: .number(.nan))
        #expect(throws: DecodeFailure.self) { try RegisterDecoder.decodeValue(point: spec, words: words).get() }
    }

    @Test(arguments: ["AB", "BA"])
    func stringsRoundTripAndPad(_ order: String) throws {
        let spec = PointSpec(
            name: "serial", quantity: "status", table: .holding, address: 0, type: .string,
            order: ByteOrder(order, byteCount: 2), length: 4
        )
        for (text, expected) in [("AQT530", "AQT530"), ("TOO LONG SERIAL", "TOO LONG"), ("", ""), ("é1", "?1")] {
            let words = RegisterEncoder.encode(point: spec, value: .text(text))
            #expect(words.count == 4)
            #expect(try RegisterDecoder.decodeValue(point: spec, words: words).get() == .text(expected))
        }
    }

    @Test(arguments: 0...15)
    func registerBitsSetOnlyTheirBit(_ index: Int) throws {
        let spec = PointSpec(name: "b", quantity: "status", table: .holding, address: 0, type: .bit, bit: index)
        let on = RegisterEncoder.encode(point: spec, value: .flag(true))
        #expect(on == [1 << UInt16(index)])
        #expect(RegisterEncoder.encode(point: spec, value: .flag(false)) == [0])
        #expect(try RegisterDecoder.decodeValue(point: spec, words: on).get() == .flag(true))
    }

    @Test(arguments: [RegisterTable.coil, .discrete])
    func bitTablesEncodeZeroOrOne(_ table: RegisterTable) {
        let spec = PointSpec(name: "door", quantity: "status", table: table, address: 3, type: .bit)
        #expect(RegisterEncoder.encode(point: spec, value: .flag(true)) == [1])
        #expect(RegisterEncoder.encode(point: spec, value: .flag(false)) == [0])
        #expect(RegisterEncoder.encode(point: spec, value: .number(2)) == [1])
    }

    @Test func encodedProfileDecodesThroughTheImage() {
        let points = [
            PointSpec(name: "decimals", quantity: "decimals", table: .holding, address: 3, type: .u16, publish: false),
            PointSpec(
                name: "level", quantity: "water_level", table: .holding, address: 4, type: .i16,
                decimalsFrom: "decimals", unit: "m"),
            PointSpec(
                name: "temp", quantity: "temperature", table: .holding, address: 10, type: .f32,
                order: ByteOrder("CDAB", byteCount: 4), unit: "Cel"),
        ]
        var image = RegisterImage()
        let values: [String: Double] = ["decimals": 3, "level": -1.234, "temp": 27.5]
        for spec in points {
            let decimals = spec.decimalsFrom == nil ? 0 : 3
            let words = RegisterEncoder.encode(point: spec, value: .number(values[spec.name]!), decimals: decimals)
            image.store(words, table: spec.table, at: spec.address)
        }
        let profile = DeviceProfile(id: "sim", points: points)
        let readings = RegisterDecoder.decode(profile: profile, image: image, device: "sim", acquiredAt: 0)
        #expect(readings.map(\.value) == [.number(3), .number(-1.234), .number(27.5)])
        #expect(readings.allSatisfy { $0.quality == .good })
    }
}

private func pow10(_ exponent: Int) -> Double {
    var result = 1.0
    for _ in 0..<abs(exponent) { result *= 10 }
    return exponent < 0 ? 1 / result : result
}
