import Foundation
import PantauCore
import Testing

/// The telemetry encoder writes bytes directly; these tests hold it to the `Encodable` + `JSONEncoder` form it
/// replaced (kept here as the reference), byte for byte, over awkward numbers, strings and shapes.
@Suite struct SenMLWriterTests {
    let identity = GatewayIdentity(site: "tng", id: "gw-01")

    // MARK: the reference: the encoder before issue 12/17's hot-path work

    struct Record: Encodable {
        var bn: String?
        var bt: Double?
        var n: String
        var u: String?
        var v: SenMLNumber?
        var vs: String?
        var vb: Bool?
        var q: String?
    }

    struct Timed: Encodable {
        var record: Record
        var t: Double

        func encode(to encoder: Encoder) throws {
            try record.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            if t != 0 { try c.encode(t, forKey: .t) }
        }

        enum Key: String, CodingKey { case t }
    }

    func reference(_ readings: [Reading], device: String, compact: Bool) throws -> [UInt8]? {
        guard let first = readings.first else { return nil }
        let baseTime = first.acquiredAt
        var records: [Record] = []
        for (i, r) in readings.enumerated() {
            var rec = Record(n: r.point, q: compact && r.quality == .good ? nil : r.quality.rawValue)
            if i == 0 {
                if !compact { rec.bn = PayloadEncoder.baseName(identity: identity, device: device) }
                rec.bt = Double(baseTime) / 1000
            }
            if !compact, !r.unit.isEmpty { rec.u = r.unit }
            switch r.value {
            case .number(let v)?: rec.v = v.isFinite ? .double(v) : nil
            case .integer(let i)?: rec.v = SenMLNumber(exactly: i)
            case .text(let s)?: rec.vs = s
            case .flag(let b)?: rec.vb = b
            case nil: break
            }
            records.append(rec)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if readings.contains(where: { $0.acquiredAt != baseTime }) {
            let timed = records.enumerated().map {
                Timed(record: $0.element, t: Double(readings[$0.offset].acquiredAt - baseTime) / 1000)
            }
            return Array(try encoder.encode(timed))
        }
        return Array(try encoder.encode(records))
    }

    func reading(_ point: String, _ value: PointValue?, unit: String = "", quality: Quality = .good, at t: UnixMillis)
        -> Reading
    {
        Reading(
            device: "d", point: point, quantity: "counter", unit: unit, value: value, quality: quality, acquiredAt: t)
    }

    func same(_ readings: [Reading], device: String = "d/1") throws {
        for compact in [false, true] {
            let fast = PayloadEncoder.telemetry(readings, identity: identity, device: device, compact: compact)
            let slow = try reference(readings, device: device, compact: compact)
            #expect(
                fast.map { String(decoding: $0, as: UTF8.self) } == slow.map { String(decoding: $0, as: UTF8.self) })
        }
    }

    @Test func awkwardDoublesAreWrittenAsJSONEncoderWritesThem() throws {
        let values: [Double] = [
            0, -0.0, 1, -1, 0.1, 0.5, 12.5, 1e-5, 1e-7, 123456789.125, 1e15, 1e16, 1.5e17, 9_007_199_254_740_993, 1e21,
            1e22, -1e300, 5e-324, .greatestFiniteMagnitude, .leastNormalMagnitude, 1 / 3, 2.0 / 3, 29.1, 100,
            65535, -32768, 4_294_967_295, .nan, .infinity, -.infinity,
        ]
        try same(
            values.enumerated().map { reading("p\($0.offset)", .number($0.element), unit: "mm", at: 1_764_460_800_250) }
        )
    }

    @Test func randomDoublesAndIntegersMatch() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let readings = (0..<20).map { i -> Reading in
                let bits = UInt64.random(in: .min ... .max, using: &rng)
                let value: PointValue
                switch i % 4 {
                case 0: value = .number(Double(bitPattern: bits))
                case 1: value = .number(Double(Int32(truncatingIfNeeded: bits)) / 100)
                case 2: value = .integer(Int128(Int64(bitPattern: bits)))
                default: value = .integer(Int128(bits) * (i % 8 == 3 ? -1 : 1))
                }
                return reading("r\(i)", value, unit: "count", at: 1_700_000_000_000 + Int64(bits % 1000))
            }
            try same(readings)
        }
    }

    @Test func integersBeyondSixtyFourBitsAndAtTheEdges() throws {
        let values: [Int128] = [
            0, -1, Int128(Int64.max), Int128(Int64.min), Int128(UInt64.max), Int128(UInt64.max) + 1,
            -Int128(UInt64.max) - 5,
        ]
        try same(values.enumerated().map { reading("i\($0.offset)", .integer($0.element), at: 1000) })
    }

    @Test func everyControlCharacterQuoteBackslashSlashAndNonASCIIStringMatches() throws {
        var texts = (0..<0x80).map { String(UnicodeScalar(UInt8($0))) }
        texts += ["a\"b\\c/d", "µg/m³", "水位", "emoji 🌊", "\u{2028}\u{2029}", "", "tab\tnew\nline\r", "\u{7F}", "é"]
        let readings = texts.enumerated().map {
            reading("n\($0.element)", .text($0.element), unit: $0.element, quality: .good, at: 42)
        }
        try same(readings, device: "dev\"ice/\u{1}")
    }

    @Test func flagsMissingValuesQualitiesAndRelativeTimesMatch() throws {
        let readings = [
            reading("a", .flag(true), at: 1_000),
            reading("b", .flag(false), quality: .outOfRange, at: 1_000),
            reading("c", nil, unit: "ppb", quality: .deviceError, at: 1_500),
            reading("d", .number(.nan), quality: .outOfRange, at: 999),
            reading("e", .number(3), unit: "m", at: 1_000 + 86_400_000),
        ]
        try same(readings)
        try same([readings[0]])
        #expect(PayloadEncoder.telemetry([], identity: identity, device: "d") == nil)
    }
}

/// Aggregate bodies are written directly too; held to `JSONEncoder` (the protocol's generic `jsonBody()`).
@Suite struct AggregateBodyTests {
    func generic(_ payload: some EnvironmentPayload) throws -> [UInt8] { try payload.jsonBody() }

    func payload(_ values: [Double], late: Int = 0, device: String = "dev-1", point: String = "pm25")
        -> AggregatePayload
    {
        var statistics = WindowStatistics()
        for (i, v) in values.enumerated() { statistics.add(v, at: 1_764_460_800_000 + Int64(i) * 1000) }
        return AggregatePayload(
            WindowResult(
                device: device, point: point, quantity: "pm2_5", unit: "µg/m³", window: .minutes(15),
                start: 1_764_460_800_000, end: 1_764_461_700_000, statistics: statistics, expected: 900 / 7,
                coverage: 2 / 3, lateDropped: late))
    }

    @Test func directBodyIsJSONEncodersByteForByte() throws {
        var rng = SystemRandomNumberGenerator()
        var cases = [
            payload([1]), payload([0, -0.0, 1e-9, 1e100]), payload([0, 1e300]), payload([29.1, 30.2, 28.7], late: 3),
        ]
        cases.append(payload([12.5], device: "a\"b\\c/d\u{1}", point: "tab\there"))
        for _ in 0..<100 {
            let values = (0..<Int.random(in: 1...40, using: &rng)).map { _ in
                Double(Int32.random(in: .min ... .max, using: &rng)) / Double(Int.random(in: 1...10_000, using: &rng))
            }
            cases.append(payload(values, late: Int.random(in: 0...5, using: &rng)))
        }
        // [0, 1e300] overflows the variance: both must refuse it.
        func text(_ body: () throws -> [UInt8]) -> String {
            (try? body()).map { String(decoding: $0, as: UTF8.self) } ?? "throws"
        }
        for p in cases {
            #expect(text { try p.jsonBody() } == text { try generic(p) })
        }
        #expect(text { try cases[2].jsonBody() } == "throws")
    }

    @Test func aNonFiniteValueThrowsAsJSONEncoderDoes() {
        var p = payload([1, 2])
        p.stddev = .nan
        #expect(throws: EncodingError.self) { try p.jsonBody() }
        #expect(throws: EncodingError.self) { try generic(p) }
        p.stddev = 0
        p.max = .infinity
        #expect(throws: EncodingError.self) { try p.jsonBody() }
    }
}
