import Foundation
import PantauCore
import Testing

/// 64-bit integers beyond 2^53 stay exact from the registers to the SenML `v` and the profile test vectors.
@Suite struct ExactIntegerTests {
    static func point(_ type: ValueType, scale: Double = 1) -> PointSpec {
        PointSpec(name: "n", quantity: "counter", table: .holding, address: 0, type: type, scale: scale)
    }

    @Test(arguments: [
        (ValueType.u64, [UInt16](repeating: 0xFFFF, count: 4), "18446744073709551615"),
        (.u64, [0x0020, 0x0000, 0x0000, 0x0001], "9007199254740993"),
        (.i64, [0x8000, 0x0000, 0x0000, 0x0001], "-9223372036854775807"),
        (.i64, [0x8000, 0x0000, 0x0000, 0x0000], "-9223372036854775808"),
        (.i64, [0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF], "9223372036854775807"),
    ])
    func decodedExactlyAndWrittenWithEveryDigit(type: ValueType, words: [UInt16], digits: String) throws {
        let value = try RegisterDecoder.decodeValue(point: Self.point(type), words: words).get()
        #expect(value == .integer(Int128(digits)!))
        let reading = Reading(
            device: "d", point: "n", quantity: "counter", unit: "", value: value, quality: .good, acquiredAt: 1000)
        let body = try #require(
            PayloadEncoder.telemetry(
                [reading], identity: GatewayIdentity(site: "s", id: "g"),
                device: "d"))
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains("\"v\":\(digits)"), "\(text)")
        // Back to registers: the same words.
        #expect(RegisterEncoder.encode(point: Self.point(type), value: value) == words)
    }

    @Test func integersADoubleHoldsStayNumbers() throws {
        #expect(try RegisterDecoder.decodeValue(point: Self.point(.u64), words: [0, 0, 0, 42]).get() == .number(42))
        #expect(
            try RegisterDecoder.decodeValue(point: Self.point(.i64), words: [0xFFFF, 0xFFFF, 0xFFFF, 0xFF85]).get()
                == .number(-123))
        // A scaled 64-bit value is an engineering number, not an integer.
        let words: [UInt16] = [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]
        let scaled = try RegisterDecoder.decodeValue(point: Self.point(.u64, scale: 0.5), words: words).get()
        #expect(scaled == .number(18_446_744_073_709_551_615.0 * 0.5))
    }

    @Test func interpretationsOfFourRegistersAreExact() {
        let rows = RegisterDecoder.interpretations(words: [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE])
        let u64 = rows.first { $0.type == .u64 && $0.order.description == "ABCDEFGH" }
        #expect(u64?.value == .integer(Int128("18446744073709551614")!))
        let i64 = rows.first { $0.type == .i64 && $0.order.description == "ABCDEFGH" }
        #expect(i64?.value == .number(-2))
    }

    @Test func aProfileVectorComparesBigIntegersExactly() throws {
        func outcome(expecting digits: String) throws -> ProfileVectors.Outcome {
            let text = """
                id: t
                manufacturer: M
                model: X
                source: test
                points:
                  - {name: total, quantity: counter, table: holding, address: 0, type: u64, unit: count}
                test_vectors:
                  - description: top
                    registers: {holding: {0: 0xFFFF, 1: 0xFFFF, 2: 0xFFFF, 3: 0xFFFF}}
                    expect: {total: \(digits)}
                """
            let profile = try ProfileParser.parse(text, file: "t.yaml").get()
            return ProfileVectors.run(profile)
        }
        #expect(try outcome(expecting: "18446744073709551615").passed)
        #expect(try !outcome(expecting: "18446744073709551614").passed)
        #expect(try !outcome(expecting: "18446744073709551000").passed)
    }
}
