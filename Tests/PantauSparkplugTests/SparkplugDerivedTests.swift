import Foundation
import PantauCore
import Testing

@testable import PantauSparkplug

private let profile = DeviceProfile(
    id: "aq", manufacturer: "T", model: "AQ", source: "unit test",
    points: [
        PointSpec(name: "pm25", quantity: "pm2_5", table: .input, address: 1, type: .u16, scale: 0.1, unit: "ug/m3"),
        PointSpec(name: "level", quantity: "water_level", table: .input, address: 2, type: .u16, unit: "cm"),
        PointSpec(name: "model", quantity: "status", table: .input, address: 3, type: .string, length: 2, unit: ""),
        PointSpec(name: "float_high", quantity: "status", table: .coil, address: 1, type: .bit, unit: ""),
    ])

private let base = "pantau/site/gw/devices/aq-1/"

private func edge(windows: [Interval] = [.minutes(15)]) -> SparkplugEdge {
    let device = DeviceConfig(
        name: "aq-1", bus: "net", unitId: 1, profile: profile, pollInterval: .seconds(5),
        flood: [FloodAlertConfig(point: "level", siaga3: 100, siaga2: 150, siaga1: 200)],
        floatSwitches: [FloatSwitchConfig(point: "float_high")], rain: RainConfig(point: "level"),
        airQuality: AirQualityConfig(indices: [.ispu, .aqi]))
    return SparkplugEdge(
        topics: SparkplugTopics(group: "g", edgeNode: "e"), devices: [device], windows: windows, savedBdSeq: nil,
        saveBdSeq: { _ in })
}

private func message(_ suffix: String, _ json: String, kind: MessageKind = .aggregate) -> OutboundMessage {
    OutboundMessage(
        kind: kind, topic: base + suffix, body: Array(json.utf8), device: "aq-1", acquiredAt: 1_800_000_000_000)
}

private func metrics(_ m: OutboundMessage?) throws -> [UInt64: SpBPayload.Metric] {
    let payload = try SpBPayload(serializedBytes: try #require(m).body)
    return Dictionary(uniqueKeysWithValues: payload.metrics.map { ($0.alias, $0) })
}

@Suite("Sparkplug metrics for aggregates, indices and flood alerts")
struct SparkplugDerivedTests {
    @Test("the DBIRTH declares them after the points, with the SenML contract's names, datatypes and units")
    func catalog() throws {
        let e = edge()
        let specs = try #require(e.catalog["aq-1"])
        let names = specs.map(\.name)
        #expect(Array(names.prefix(4)) == ["pm25", "level", "model", "float_high"])
        // Aggregates for points with a number (a bit is 0 or 1), not text; each field once per window.
        #expect(names.contains("aggregates/15m/pm25/mean") && names.contains("aggregates/15m/level/coverage"))
        #expect(names.contains("aggregates/15m/float_high/mean"))
        #expect(!names.contains { $0.hasPrefix("aggregates/15m/model") })
        #expect(names.filter { $0.hasPrefix("aggregates/") }.count == 18)
        let indices = [
            "index/ispu", "index/ispu/category", "index/ispu/critical", "index/ispu/status", "index/aqi",
            "index/aqi/category", "index/aqi/dominant", "index/aqi/status",
        ]
        #expect(indices.allSatisfy(names.contains))
        let flood = [
            "alerts/level/level", "alerts/level/level_name", "alerts/level/stale",
            "alerts/level/rate_of_rise/active", "alerts/level/value",
        ]
        #expect(flood.allSatisfy(names.contains))
        let others = [
            "alerts/float_high/state", "rain/mm_interval", "rain/intensity_mm_h", "rain/mm_24h",
            "rain/category_hourly", "rain/category_daily",
        ]
        #expect(others.allSatisfy(names.contains))
        #expect(specs.map(\.alias) == Array(2..<UInt64(2 + specs.count)))
        let byName = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
        #expect(byName["aggregates/15m/pm25/mean"]?.unit == "ug/m3" && byName["aggregates/15m/pm25/count"]?.unit == "")
        #expect(byName["aggregates/15m/pm25/count"]?.datatype == .int64 && byName["index/ispu"]?.datatype == .int64)
        #expect(byName["alerts/level/stale"]?.datatype == .boolean && byName["alerts/level/value"]?.unit == "cm")
        let dbirth = try SpBPayload(serializedBytes: e.births(at: 1)[1].payload)
        #expect(dbirth.metrics.map(\.name) == names && dbirth.metrics.dropFirst(4).allSatisfy(\.isNull))
    }

    @Test("an aggregate window becomes DDATA of its six metrics, timestamped at the window's end")
    func aggregate() throws {
        let e = edge()
        let json = #"""
            {"count":180,"coverage":1,"device":"aq-1","end":1800000900000,"expected":180,"first":20,
             "first_at":1800000000000,"last":24.5,"last_at":1800000895000,"late":0,"max":25.5,"mean":23.25,"min":20,
             "point":"pm25","quantity":"pm2_5","start":1800000000000,"stddev":1.5,"unit":"ug/m3","window":"15m",
             "window_ms":900000,"tq":"unsynced"}
            """#
        let ddata = try #require(e.derivedMessage(message("aggregates/15m", json)))
        #expect(ddata.topic == "spBv1.0/g/DDATA/e/aq-1" && ddata.kind == .aggregate && !ddata.retain)
        let specs = Dictionary(uniqueKeysWithValues: try #require(e.catalog["aq-1"]).map { ($0.name, $0.alias) })
        let m = try metrics(ddata)
        #expect(m.count == 6)
        #expect(m[specs["aggregates/15m/pm25/count"]!]?.longValue == 180)
        #expect(m[specs["aggregates/15m/pm25/mean"]!]?.doubleValue == 23.25)
        #expect(m[specs["aggregates/15m/pm25/min"]!]?.doubleValue == 20)
        #expect(m[specs["aggregates/15m/pm25/max"]!]?.doubleValue == 25.5)
        #expect(m[specs["aggregates/15m/pm25/stddev"]!]?.doubleValue == 1.5)
        #expect(m[specs["aggregates/15m/pm25/coverage"]!]?.doubleValue == 1)
        #expect(m.values.allSatisfy { $0.timestamp == 1_800_000_900_000 && !$0.hasName })
        // A window the catalog does not know (another configuration's) stays JSON.
        #expect(e.derivedMessage(message("aggregates/1h", json.replacingOccurrences(of: "15m", with: "1h"))) == nil)
    }

    @Test("ISPU with and without enough data; a flood alert; a float switch; rain")
    func indicesAndAlerts() throws {
        let e = edge()
        let specs = Dictionary(uniqueKeysWithValues: try #require(e.catalog["aq-1"]).map { ($0.name, $0.alias) })
        let ok = #"""
            {"at":1800003600000,"beyond_scale":false,"category":"Baik","colour":"#34cc33","critical":"pm2_5",
             "device":"aq-1","ispu":40,"min_coverage":0.75,"parameters":{},"status":"ok"}
            """#
        var m = try metrics(e.derivedMessage(message("index/ispu", ok)))
        #expect(m[specs["index/ispu"]!]?.longValue == 40 && m[specs["index/ispu/category"]!]?.stringValue == "Baik")
        #expect(m[specs["index/ispu/critical"]!]?.stringValue == "pm2_5")
        #expect(m[specs["index/ispu/status"]!]?.stringValue == "ok")
        let insufficient = #"""
            {"at":1800003600000,"device":"aq-1","min_coverage":0.75,"parameters":{},"status":"insufficient_data"}
            """#
        m = try metrics(e.derivedMessage(message("index/ispu", insufficient)))
        #expect(m[specs["index/ispu"]!]?.isNull == true && m[specs["index/ispu/category"]!]?.isNull == true)
        #expect(m[specs["index/ispu/status"]!]?.stringValue == "insufficient_data")

        let flood = #"""
            {"at":1800000060000,"device":"aq-1","level":3,"level_name":"waspada","point":"level",
             "poll_interval_ms":5000,"since":1800000060000,"stale":false,
             "thresholds":{"hysteresis":0,"siaga1":200,"siaga2":150,"siaga3":100},"unit":"cm","value":120,
             "value_at":1800000060000}
            """#
        let alert = try #require(e.derivedMessage(message("alerts/level", flood, kind: .alert)))
        #expect(alert.kind == .alert)
        m = try metrics(alert)
        #expect(m[specs["alerts/level/level"]!]?.longValue == 3)
        #expect(m[specs["alerts/level/level_name"]!]?.stringValue == "waspada")
        #expect(m[specs["alerts/level/stale"]!]?.booleanValue == false)
        #expect(m[specs["alerts/level/rate_of_rise/active"]!]?.isNull == true)
        #expect(m[specs["alerts/level/value"]!]?.doubleValue == 120)

        let floatSwitch = #"{"at":1,"device":"aq-1","dwell_ms":0,"point":"float_high","samples":3,"state":"wet"}"#
        m = try metrics(e.derivedMessage(message("alerts/float_high", floatSwitch, kind: .alert)))
        #expect(m.count == 1 && m[specs["alerts/float_high/state"]!]?.stringValue == "wet")
        let rain = #"""
            {"at":1800000060000,"category_daily":"ringan","category_hourly":"sedang","counter_resets":0,
             "device":"aq-1","intensity_mm_h":6,"interval_start":1800000000000,"mm_24h":6.5,"mm_interval":2.25,
             "point":"level"}
            """#
        m = try metrics(e.derivedMessage(message("rain", rain)))
        #expect(m[specs["rain/mm_interval"]!]?.doubleValue == 2.25 && m[specs["rain/mm_24h"]!]?.doubleValue == 6.5)
        #expect(m[specs["rain/intensity_mm_h"]!]?.doubleValue == 6)
        #expect(m[specs["rain/category_hourly"]!]?.stringValue == "sedang")
        #expect(m[specs["rain/category_daily"]!]?.stringValue == "ringan")
        // A body that is not what its topic says stays JSON.
        #expect(e.derivedMessage(message("rain", #"{"at":1,"device":"aq-1","point":"rain"}"#)) == nil)
        var other = message("index/ispu", ok)
        other.device = "other"
        #expect(e.derivedMessage(other) == nil)
    }

    @Test("the next DBIRTH carries the last values sent live; a dead device's values stay JSON")
    func birthAndDeath() throws {
        let e = edge()
        _ = e.births(at: 1)
        let ok = #"""
            {"at":1800003600000,"category":"Baik","critical":"pm2_5","device":"aq-1","ispu":40,"min_coverage":0.75,
             "parameters":{},"status":"ok"}
            """#
        let ddata = try #require(e.derivedMessage(message("index/ispu", ok)))
        _ = e.frame(ddata.body, topic: ddata.topic, historical: false)
        let dbirth = try SpBPayload(serializedBytes: e.births(at: 2)[1].payload)
        let ispu = try #require(dbirth.metrics.first { $0.name == "index/ispu" })
        #expect(ispu.longValue == 40 && !ispu.isNull && ispu.datatype == 4)
        _ = e.availabilityMessage(device: "aq-1", online: false, at: 3)
        #expect(e.derivedMessage(message("index/ispu", ok)) == nil)
    }
}
