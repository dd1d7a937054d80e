import PantauCore
import Testing

/// One value with its wire words written out by hand, so the decoder and the encoder are checked against the
/// datasheet notation rather than against each other.
struct WireCase: CustomTestStringConvertible, Sendable {
    var type: ValueType
    var order: String
    var words: [UInt16]
    var expected: PointValue

    var testDescription: String { "\(type.rawValue) \(order) \(words.map { String($0, radix: 16) })" }

    var point: PointSpec {
        let bytes = type == .string ? 2 : (type.registerCount ?? 1) * 2
        return PointSpec(
            name: "p", quantity: "counter", table: .holding, address: 0, type: type,
            order: ByteOrder(order, byteCount: bytes)!, length: words.count, bit: type == .bit ? 3 : nil
        )
    }
}

/// Every type in every standard byte order. Value bytes (most significant first) are named in each comment.
let wireCases: [WireCase] = [
    // 0xFF38: u16 65336, i16 -200
    WireCase(type: .u16, order: "AB", words: [0xFF38], expected: .number(65336)),
    WireCase(type: .u16, order: "BA", words: [0x38FF], expected: .number(65336)),
    WireCase(type: .i16, order: "AB", words: [0xFF38], expected: .number(-200)),
    WireCase(type: .i16, order: "BA", words: [0x38FF], expected: .number(-200)),
    // FF FE 1D C0: u32 4294843840, i32 -123456
    WireCase(type: .u32, order: "ABCD", words: [0xFFFE, 0x1DC0], expected: .number(4_294_843_840)),
    WireCase(type: .u32, order: "CDAB", words: [0x1DC0, 0xFFFE], expected: .number(4_294_843_840)),
    WireCase(type: .u32, order: "BADC", words: [0xFEFF, 0xC01D], expected: .number(4_294_843_840)),
    WireCase(type: .u32, order: "DCBA", words: [0xC01D, 0xFEFF], expected: .number(4_294_843_840)),
    WireCase(type: .i32, order: "ABCD", words: [0xFFFE, 0x1DC0], expected: .number(-123_456)),
    WireCase(type: .i32, order: "CDAB", words: [0x1DC0, 0xFFFE], expected: .number(-123_456)),
    WireCase(type: .i32, order: "BADC", words: [0xFEFF, 0xC01D], expected: .number(-123_456)),
    WireCase(type: .i32, order: "DCBA", words: [0xC01D, 0xFEFF], expected: .number(-123_456)),
    // 42 F6 E9 79: f32 123.456
    WireCase(type: .f32, order: "ABCD", words: [0x42F6, 0xE979], expected: .number(Double(Float(123.456)))),
    WireCase(type: .f32, order: "CDAB", words: [0xE979, 0x42F6], expected: .number(Double(Float(123.456)))),
    WireCase(type: .f32, order: "BADC", words: [0xF642, 0x79E9], expected: .number(Double(Float(123.456)))),
    WireCase(type: .f32, order: "DCBA", words: [0x79E9, 0xF642], expected: .number(Double(Float(123.456)))),
    // BF C0 00 00: f32 -1.5
    WireCase(type: .f32, order: "CDAB", words: [0x0000, 0xBFC0], expected: .number(-1.5)),
    // 00 11 22 33 44 55 66 77: u64 4822678189205111 (53 bits, so a double holds it exactly)
    WireCase(
        type: .u64, order: "ABCDEFGH", words: [0x0011, 0x2233, 0x4455, 0x6677],
        expected: .number(4_822_678_189_205_111)),
    WireCase(
        type: .u64, order: "HGFEDCBA", words: [0x7766, 0x5544, 0x3322, 0x1100],
        expected: .number(4_822_678_189_205_111)),
    WireCase(
        type: .u64, order: "GHEFCDAB", words: [0x6677, 0x4455, 0x2233, 0x0011],
        expected: .number(4_822_678_189_205_111)),
    WireCase(
        type: .u64, order: "BADCFEHG", words: [0x1100, 0x3322, 0x5544, 0x7766],
        expected: .number(4_822_678_189_205_111)),
    // FF FF FF FF FF FF FF 85: i64 -123
    WireCase(type: .i64, order: "ABCDEFGH", words: [0xFFFF, 0xFFFF, 0xFFFF, 0xFF85], expected: .number(-123)),
    WireCase(type: .i64, order: "HGFEDCBA", words: [0x85FF, 0xFFFF, 0xFFFF, 0xFFFF], expected: .number(-123)),
    WireCase(type: .i64, order: "GHEFCDAB", words: [0xFF85, 0xFFFF, 0xFFFF, 0xFFFF], expected: .number(-123)),
    WireCase(type: .i64, order: "BADCFEHG", words: [0xFFFF, 0xFFFF, 0xFFFF, 0x85FF], expected: .number(-123)),
    // 40 93 4A 45 6D 5C FA AD: f64 1234.5678
    WireCase(type: .f64, order: "ABCDEFGH", words: [0x4093, 0x4A45, 0x6D5C, 0xFAAD], expected: .number(1234.5678)),
    WireCase(type: .f64, order: "HGFEDCBA", words: [0xADFA, 0x5C6D, 0x454A, 0x9340], expected: .number(1234.5678)),
    WireCase(type: .f64, order: "GHEFCDAB", words: [0xFAAD, 0x6D5C, 0x4A45, 0x4093], expected: .number(1234.5678)),
    WireCase(type: .f64, order: "BADCFEHG", words: [0x9340, 0x454A, 0x5C6D, 0xADFA], expected: .number(1234.5678)),
    // "AQT530" padded with NUL; the BA order swaps the two characters of each register
    WireCase(type: .string, order: "AB", words: [0x4151, 0x5435, 0x3330, 0x0000], expected: .text("AQT530")),
    WireCase(type: .string, order: "BA", words: [0x5141, 0x3554, 0x3033, 0x0000], expected: .text("AQT530")),
    // bit 3 of the register
    WireCase(type: .bit, order: "AB", words: [0x0008], expected: .flag(true)),
    WireCase(type: .bit, order: "AB", words: [0xFFF7], expected: .flag(false)),
]

private func point(
    _ name: String, _ type: ValueType, at address: Int, table: RegisterTable = .holding, order: String? = nil,
    encoding: IntegerEncoding = .twosComplement, scale: Double = 1, offset: Double = 0, decimalsFrom: String? = nil,
    range: ClosedRange<Double>? = nil, length: Int = 1, bit: Int? = nil, publish: Bool = true
) -> PointSpec {
    PointSpec(
        name: name, quantity: "counter", table: table, address: address, type: type,
        order: order.map { ByteOrder($0, byteCount: $0.count)! }, length: length, bit: bit, encoding: encoding,
        scale: scale, offset: offset, decimalsFrom: decimalsFrom, unit: "count", validRange: range, publish: publish
    )
}

private func decodeOne(_ spec: PointSpec, words: [UInt16], decimals: Int = 0) -> PointValue? {
    try? RegisterDecoder.decodeValue(point: spec, words: words, decimals: decimals).get()
}

private func readings(_ points: [PointSpec], _ holding: [Int: UInt16]) -> [String: Reading] {
    let profile = DeviceProfile(id: "test", points: points)
    let image = RegisterImage([.holding: holding])
    let all = RegisterDecoder.decode(profile: profile, image: image, device: "dev-1", acquiredAt: 1_700_000_000_000)
    return Dictionary(uniqueKeysWithValues: all.map { ($0.point, $0) })
}

@Suite struct DecoderTests {
    @Test(arguments: wireCases)
    func decodesKnownWireBytes(_ row: WireCase) {
        #expect(decodeOne(row.point, words: row.words) == row.expected)
    }

    @Test func everyTypeAndStandardOrderHasAWireCase() {
        for type in ValueType.allCases {
            let bytes = type == .string || type == .bit ? 2 : type.registerCount! * 2
            let orders = type == .bit ? ["AB"] : ByteOrder.standard(byteCount: bytes).map(\.description)
            for order in orders {
                #expect(wireCases.contains { $0.type == type && $0.order == order }, "\(type) \(order)")
            }
        }
    }

    @Test(arguments: [
        (UInt16(0xFFFF), -1.0), (0x8000, -32768), (0xFF38, -200), (0x7FFF, 32767), (0x0000, 0),
    ])
    func i16Negatives(_ word: UInt16, _ expected: Double) {
        #expect(decodeOne(point("x", .i16, at: 0), words: [word]) == .number(expected))
    }

    @Test(arguments: [
        (ValueType.i16, [UInt16(0x8005)], -5.0), (.i16, [0x0005], 5), (.u16, [0x8005], -5), (.i16, [0xFFFF], -32767),
        (.i32, [0x8000, 0x0010], -16), (.i64, [0x8000, 0, 0, 1], -1),
    ])
    func signMagnitude(_ type: ValueType, _ words: [UInt16], _ expected: Double) {
        #expect(decodeOne(point("x", type, at: 0, encoding: .signMagnitude), words: words) == .number(expected))
    }

    @Test func signMagnitudeNegativeZeroIsPlainZero() throws {
        let value = try #require(decodeOne(point("x", .i16, at: 0, encoding: .signMagnitude), words: [0x8000]))
        #expect(value == .number(0))
        #expect(value.numeric?.sign == .plus)
    }

    @Test(arguments: [(UInt16(6540), 25.4), (0, -40), (12000, 80)])
    func scaleAndOffset(_ raw: UInt16, _ expected: Double) throws {
        let value = try #require(decodeOne(point("t", .u16, at: 0, scale: 0.01, offset: -40), words: [raw]))
        #expect(abs(value.numeric! - expected) < 1e-9)
    }

    @Test(arguments: [(UInt16(123), 0.1, 0, 12.3), (1234, 1, 2, 12.34), (1234, 0.1, 1, 12.34), (5, 10, 0, 50)])
    func decimalScalingGivesTheNearestDouble(_ raw: UInt16, _ scale: Double, _ decimals: Int, _ expected: Double) {
        // Dividing by exact powers of ten, 123 × 0.1 is the double 12.3 and not 12.300000000000001 in telemetry.
        #expect(decodeOne(point("x", .u16, at: 0, scale: scale), words: [raw], decimals: decimals) == .number(expected))
    }

    @Test func negativeDecimalsMultiply() {
        #expect(decodeOne(point("x", .u16, at: 0), words: [12], decimals: -2) == .number(1200))
    }

    /// QDY30A level transmitter: register 2 is the unit, register 3 the decimal places, register 4 the level.
    let qdy30a = [
        point("unit", .u16, at: 2, publish: false),
        point("decimals", .u16, at: 3, publish: false),
        point("level", .i16, at: 4, decimalsFrom: "decimals"),
    ]

    @Test func decimalsFromAnotherRegister() {
        let result = readings(qdy30a, [2: 1, 3: 2, 4: 1234])
        #expect(result["level"]?.value == .number(12.34))
        #expect(result["level"]?.quality == .good)
        #expect(result["decimals"]?.value == .number(2), "helper points are returned; the caller filters publish")
        #expect(result["unit"]?.value == .number(1))
    }

    @Test func decimalsPointDeclaredAfterItsUser() {
        let result = readings(qdy30a.reversed(), [2: 1, 3: 3, 4: 0xFB2E])
        #expect(result["level"]?.value == .number(-1.234))
    }

    @Test(arguments: [
        ("decimals register missing", [2: 1, 4: 1234] as [Int: UInt16], "decimals"),
        ("decimals not sensible", [2: 1, 3: 40, 4: 1234], "decimals"),
        ("decimals point unknown", [2: 1, 3: 2, 4: 1234], "nosuch"),
        ("cycle", [2: 1, 3: 2, 4: 1234], "level"),
    ])
    func invalidDecimalsMakeADeviceError(_ label: String, _ holding: [Int: UInt16], _ source: String) {
        var points = qdy30a
        points[2].decimalsFrom = source
        let level = readings(points, holding)["level"]
        #expect(level?.quality == .deviceError, "\(label)")
        #expect(level?.value == nil, "\(label)")
    }

    @Test func decimalsFailureNamesTheReason() {
        let profile = DeviceProfile(id: "qdy30a", points: qdy30a)
        let image = RegisterImage([.holding: [2: 1, 4: 1234]])
        let outcome = RegisterDecoder.decodeWithFailures(profile: profile, image: image, device: "lvl", acquiredAt: 0)
        let failure = outcome.first { $0.reading.point == "level" }?.failure
        #expect(failure?.code == .invalidDecimals)
        #expect(failure?.message.contains("holding 3") == true)
        #expect(failure?.words == [1234])
    }

    @Test(arguments: [[UInt16(0x7FC0), 0x0000], [0x7F80, 0x0000], [0xFF80, 0x0000], [0xFFFF, 0xFFFF]])
    func nonFiniteFloatsAreDeviceErrors(_ words: [UInt16]) {
        let reading = readings([point("pm", .f32, at: 0)], [0: words[0], 1: words[1]])["pm"]
        #expect(reading?.quality == .deviceError)
        #expect(reading?.value == nil)
    }

    @Test func nonFiniteFailureNamesPointAndRawWords() {
        let result = RegisterDecoder.decodeValue(point: point("pm2_5", .f32, at: 8), words: [0x7FC0, 0x0000])
        guard case .failure(let failure) = result else {
            Issue.record("NaN decoded as \(result)")
            return
        }
        #expect(failure.code == .notFinite)
        #expect(failure.point == "pm2_5")
        #expect(failure.message.contains("pm2_5"))
        #expect(failure.message.contains("0x7FC0, 0x0000"))
        #expect(failure.message.contains("holding 8"))
    }

    @Test(arguments: [(UInt16(150), Quality.outOfRange), (100, .good), (0, .good), (0xFFFF, .outOfRange)])
    func rangeCheckKeepsTheValue(_ raw: UInt16, _ quality: Quality) {
        let reading = readings([point("rh", .i16, at: 0, range: 0...100)], [0: raw])["rh"]
        #expect(reading?.quality == quality)
        #expect(reading?.value == .number(Double(Int16(bitPattern: raw))))
    }

    @Test func missingRegistersAreDeviceErrors() {
        let result = readings([point("a", .u32, at: 0), point("b", .u16, at: 5)], [0: 1])
        #expect(result["a"]?.quality == .deviceError)
        #expect(result["a"]?.value == nil)
        #expect(result["b"]?.quality == .deviceError)
    }

    @Test func readingCarriesPointAndCallerFields() throws {
        let spec = PointSpec(
            name: "no2", quantity: "no2", table: .input, address: 7, type: .u16, unit: "ppb"
        )
        let profile = DeviceProfile(id: "aqt", points: [spec])
        let image = RegisterImage([.input: [7: 25]])
        let reading = try #require(
            RegisterDecoder.decode(profile: profile, image: image, device: "aq-01", acquiredAt: 42).first
        )
        #expect(
            reading
                == Reading(
                    device: "aq-01", point: "no2", quantity: "no2", unit: "ppb", value: .number(25), quality: .good,
                    acquiredAt: 42
                ))
    }

    @Test(arguments: [
        ([UInt16(0x4142), 0x4320, 0x2020], "ABC"), ([0x4142, 0x0043, 0x0000], "AB\u{0}C"), ([0x2041, 0x0000], " A"),
        ([0x0000, 0x0000], ""),
    ])
    func stringsTrimTrailingNulAndBlanks(_ words: [UInt16], _ expected: String) {
        #expect(decodeOne(point("s", .string, at: 0, length: words.count), words: words) == .text(expected))
    }

    @Test(arguments: [
        (RegisterTable.coil, UInt16(1), true), (.coil, 0, false), (.discrete, 1, true), (.discrete, 0, false),
    ])
    func bitTables(_ table: RegisterTable, _ raw: UInt16, _ expected: Bool) {
        let spec = point("door", .bit, at: 12, table: table)
        let profile = DeviceProfile(id: "t", points: [spec])
        let reading = RegisterDecoder.decode(
            profile: profile, image: RegisterImage([table: [12: raw]]), device: "d", acquiredAt: 0
        ).first
        #expect(reading?.value == .flag(expected))
        #expect(reading?.quality == .good)
    }

    @Test(arguments: 0...15)
    func everyBitOfARegister(_ index: Int) {
        let spec = point("alarm", .bit, at: 0, bit: index)
        #expect(decodeOne(spec, words: [1 << UInt16(index)]) == .flag(true))
        #expect(decodeOne(spec, words: [~(1 << UInt16(index))]) == .flag(false))
    }

    @Test(arguments: [nil, 16, -1])
    func invalidBitIndexFails(_ index: Int?) {
        let result = RegisterDecoder.decodeValue(point: point("b", .bit, at: 0, bit: index), words: [0xFFFF])
        #expect(throws: DecodeFailure.self) { try result.get() }
    }

    @Test func wrongWordCountFails() {
        let result = RegisterDecoder.decodeValue(point: point("x", .f32, at: 0), words: [0x42F6])
        #expect(throws: DecodeFailure.self) { try result.get() }
    }

    @Test func interpretationsOfTwoRegisters() {
        let rows = RegisterDecoder.interpretations(words: [0x42F6, 0xE979])
        #expect(rows.count == 12)
        #expect(Set(rows.map { "\($0.type.rawValue) \($0.order)" }).count == 12)
        let f32 = rows.first { $0.type == .f32 && $0.order.description == "ABCD" }
        #expect(f32?.value == .number(Double(Float(123.456))))
        let swapped = rows.first { $0.type == .u32 && $0.order.description == "CDAB" }
        #expect(swapped?.value == .number(Double(0xE979_42F6 as UInt32)))
    }

    @Test func interpretationsOfFourRegisters() {
        let rows = RegisterDecoder.interpretations(words: [0x9340, 0x454A, 0x5C6D, 0xADFA])
        #expect(rows.count == 12)
        #expect(
            rows.contains { $0.type == .f64 && $0.order.description == "BADCFEHG" && $0.value == .number(1234.5678) })
        #expect(Set(rows.map(\.type)) == [.u64, .i64, .f64])
    }

    @Test(arguments: [0, 3, 5])
    func interpretationsOfOtherWidthsAreEmpty(_ count: Int) {
        #expect(RegisterDecoder.interpretations(words: Array(repeating: 1, count: count)).isEmpty)
    }
}
