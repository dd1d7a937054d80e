import Foundation
import Testing

@testable import PantauCore

/// A JSON value decoded strictly (a number is never a Boolean), for checking bodies against the schemas.
indirect enum SchemaJSONValue: Decodable, Equatable {
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([SchemaJSONValue])
    case object([String: SchemaJSONValue])
    case null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([SchemaJSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: SchemaJSONValue].self))
        }
    }

    var object: [String: SchemaJSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    var strings: [String]? {
        guard case .array(let a) = self else { return nil }
        return a.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }
    var double: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }
}

/// The subset of JSON Schema 2020-12 our schemas use: type, required, properties, additionalProperties,
/// propertyNames/enum, enum, const, minimum, maximum. Returns the problems found, with their JSON path.
func schemaProblems(_ value: SchemaJSONValue, _ schema: [String: SchemaJSONValue], path: String = "$") -> [String] {
    var problems: [String] = []
    if case .string(let type)? = schema["type"] {
        let ok: Bool
        switch (type, value) {
        case ("object", .object), ("string", .string), ("boolean", .bool), ("integer", .integer), ("array", .array):
            ok = true
        case ("number", .integer), ("number", .number): ok = true
        default: ok = false
        }
        if !ok { problems.append("\(path): not \(type): \(value)") }
    }
    if case .array(let options)? = schema["enum"], !options.contains(value) {
        problems.append("\(path): \(value) not in enum")
    }
    if let constant = schema["const"], constant != value { problems.append("\(path): not \(constant)") }
    if let minimum = schema["minimum"]?.double, let v = value.double, v < minimum { problems.append("\(path) < min") }
    if let maximum = schema["maximum"]?.double, let v = value.double, v > maximum { problems.append("\(path) > max") }
    guard let object = value.object else { return problems }
    for key in schema["required"]?.strings ?? [] where object[key] == nil {
        problems.append("\(path): missing \(key)")
    }
    let properties = schema["properties"]?.object ?? [:]
    for (key, v) in object {
        if let sub = properties[key]?.object {
            problems += schemaProblems(v, sub, path: "\(path).\(key)")
        } else if let extra = schema["additionalProperties"]?.object {
            problems += schemaProblems(v, extra, path: "\(path).\(key)")
        }
        if let names = schema["propertyNames"]?.object {
            problems += schemaProblems(.string(key), names, path: "\(path) key")
        }
    }
    return problems
}

@Suite("Environment payloads")
struct EnvironmentPayloadTests {
    static let schemaDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/schemas")

    static func schema(_ name: String) throws -> [String: SchemaJSONValue] {
        let data = try Data(contentsOf: schemaDirectory.appendingPathComponent("\(name).schema.json"))
        return try #require(try JSONDecoder().decode(SchemaJSONValue.self, from: data).object)
    }

    /// Frames the body as the publisher does, decodes it and checks it against the schema; returns the object.
    @discardableResult
    static func check(_ payload: some EnvironmentPayload, schema name: String, historical: Bool = false) throws
        -> [String: SchemaJSONValue]
    {
        let body = try payload.jsonBody()
        #expect(body.first == UInt8(ascii: "{"))
        let framed = PayloadFraming.frame(body, seq: 42, historical: historical)
        #expect(framed.starts(with: Array((historical ? "{\"seq\":42,\"hist\":true," : "{\"seq\":42,").utf8)))
        if let directory = ProcessInfo.processInfo.environment["PANTAU_SCHEMA_SAMPLES"] {
            let file = URL(fileURLWithPath: directory).appendingPathComponent("\(name)-\(UUID().uuidString).json")
            try Data(framed).write(to: file)
        }
        let value = try JSONDecoder().decode(SchemaJSONValue.self, from: Data(framed))
        let problems = schemaProblems(value, try schema(name))
        #expect(problems.isEmpty, "\(problems)")
        return try #require(value.object)
    }

    @Test("aggregate window result")
    func aggregate() throws {
        var agg = WindowAggregator(windows: [.minutes(15)]) { _ in .seconds(30) }
        for k in 0..<20 {
            _ = agg.ingest(
                envReading(
                    Double(k), at: envMidnight + Int64(k) * 30_000, point: "pm25", quantity: "pm2_5", unit: "ug/m3"))
        }
        let result = try #require(agg.advance(to: envMidnight + 16 * envMinute).first)
        let payload = AggregatePayload(result)
        let json = try Self.check(payload, schema: "aggregate")
        #expect(json["window"] == .string("15m"))
        #expect(json["start"] == .integer(envMidnight))
        #expect(json["count"] == .integer(20))
        // Rounded to 4 decimals on the wire.
        #expect(json["coverage"]?.double == 0.6667)
        let body = String(decoding: try payload.jsonBody(), as: UTF8.self)
        #expect(body.hasPrefix("{\"count\":20,\"coverage\":"))
        #expect(body.contains("\"unit\":\"ug/m3\""))
        let message = try payload.message(
            topics: TopicScheme(prefix: "pantau", identity: GatewayIdentity(site: "s", id: "g")))
        #expect(message.topic == "pantau/s/g/devices/dev-1/aggregates/15m")
        #expect(message.kind == .aggregate && !message.retain && message.acquiredAt == envMidnight + 15 * envMinute)
        try Self.check(payload, schema: "aggregate", historical: true)
    }

    @Test("ISPU result, with and without sufficient data")
    func ispu() throws {
        var ix = AirQualityIndexer(config: AirQualityConfig(), expectedInterval: .minutes(1))
        for m in Int64(0)..<1440 {
            ix.ingest(envReading(600, at: envMidnight + m * envMinute, point: "pm25", quantity: "pm2_5", unit: "ug/m3"))
        }
        ix.ingest(envReading(30, at: envMidnight, point: "so2", quantity: "so2", unit: "ppb"))
        let result = ix.ispu(now: envMidnight + 24 * envHour)
        let json = try Self.check(ISPUPayload(device: "aq-01", result: result, minimumCoverage: 0.75), schema: "ispu")
        #expect(json["ispu"] == .integer(500))
        #expect(json["beyond_scale"] == .bool(true))
        #expect(json["critical"] == .string("pm2_5"))
        #expect(json["category"] == .string("Berbahaya"))
        let so2 = try #require(json["parameters"]?.object?["so2"]?.object)
        #expect(so2["status"] == .string("insufficient_data"))
        #expect(so2["sub_index"] == nil)

        let empty = AirQualityIndexer(config: AirQualityConfig(), expectedInterval: .minutes(1)).ispu(now: envMidnight)
        let none = try Self.check(ISPUPayload(device: "aq-01", result: empty, minimumCoverage: 0.75), schema: "ispu")
        #expect(none["status"] == .string("insufficient_data"))
        #expect(none["ispu"] == nil)
    }

    @Test("AQI result")
    func aqi() throws {
        var ix = AirQualityIndexer(config: AirQualityConfig(indices: [.aqi, .ispu]), expectedInterval: .minutes(1))
        for m in Int64(0)..<720 {
            ix.ingest(envReading(12, at: envMidnight + m * envMinute, point: "pm25", quantity: "pm2_5", unit: "ug/m3"))
            ix.ingest(envReading(30, at: envMidnight + m * envMinute, point: "no2", quantity: "no2", unit: "ppb"))
        }
        let evaluation = ix.evaluate(now: envMidnight + 12 * envHour)
        #expect(evaluation.publishAQI && evaluation.publishISPU)
        let json = try Self.check(AQIPayload(device: "aq-01", result: try #require(evaluation.aqi)), schema: "aqi")
        #expect(json["aqi"] == .integer(56))
        #expect(json["dominant"] == .string("pm2_5"))
        #expect(json["parameters"]?.object?["pm2_5"]?.object?["method"] == .string("nowcast"))
        #expect(json["parameters"]?.object?["no2"]?.object?["unit"] == .string("ppb"))
    }

    @Test("flood alert state, before any reading and during an alert")
    func alert() throws {
        let config = FloodAlertConfig(
            point: "level", siaga3: 100, siaga2: 150, siaga1: 200, hysteresis: 5, rateOfRise: 20,
            pollIntervals: [.siaga2: .minutes(15)])
        var engine = FloodAlertEngine(config: config, devicePollInterval: .minutes(60), staleAfter: .minutes(10))
        try Self.check(FloodAlertPayload(device: "wl-01", unit: "cm", engine: engine, at: envMidnight), schema: "alert")
        _ = engine.ingest(envReading(120, at: envMidnight, point: "level"))
        _ = engine.ingest(envReading(160, at: envMidnight + 5 * envMinute, point: "level"))
        let payload = FloodAlertPayload(device: "wl-01", unit: "cm", engine: engine, at: envMidnight + 5 * envMinute)
        let json = try Self.check(payload, schema: "alert")
        #expect(json["level"] == .integer(2))
        #expect(json["level_name"] == .string("siaga"))
        #expect(json["poll_interval_ms"] == .integer(15 * envMinute))
        #expect(json["rate_of_rise"]?.object?["active"] == .bool(true))
        let message = try payload.message(
            topics: TopicScheme(prefix: "pantau", identity: GatewayIdentity(site: "s", id: "g")))
        #expect(message.retain && message.kind == .alert)
        #expect(message.topic == "pantau/s/g/devices/wl-01/alerts/level")
    }

    @Test("rain report")
    func rain() throws {
        var acc = RainAccumulator(config: RainConfig(point: "rain", mmPerCount: 0.2))
        acc.ingest(envReading(10, at: envMidnight, point: "rain"))
        acc.ingest(envReading(40, at: envMidnight + 30 * envMinute, point: "rain"))
        let payload = RainPayload(device: "rg-01", point: "rain", report: acc.report(now: envMidnight + 30 * envMinute))
        let json = try Self.check(payload, schema: "rain")
        #expect(json["intensity_mm_h"]?.double == 6)
        #expect(json["category_hourly"] == .string("sedang"))
        #expect(json["category_daily"] == .string("ringan"))
    }

    @Test("the checker itself rejects a body that lacks a required field or has a wrong type")
    func checkerRejects() throws {
        let schema = try Self.schema("rain")
        let bad = SchemaJSONValue.object(["seq": .integer(1), "device": .integer(3)])
        let problems = schemaProblems(bad, schema)
        #expect(problems.contains { $0.contains("missing point") })
        #expect(problems.contains { $0.contains("$.device: not string") })
    }
}
