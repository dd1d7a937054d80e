import PantauCore
import PantauMQTT
import Synchronization
import Testing

@testable import PantauSparkplug

private let profile = DeviceProfile(
    id: "th", manufacturer: "T", model: "TH", source: "unit test",
    points: [
        PointSpec(
            name: "temp", quantity: "temperature", table: .input, address: 1, type: .i16, scale: 0.1, unit: "Cel"),
        PointSpec(name: "count", quantity: "counter", table: .input, address: 2, type: .u64, unit: ""),
    ])

private final class Saved: Sendable {
    let values = Mutex<[UInt64]>([])
}

private func edge(saved: UInt64? = nil, store: Saved? = nil) -> SparkplugEdge {
    let device = DeviceConfig(name: "th-1", bus: "net", unitId: 1, profile: profile, pollInterval: .seconds(5))
    return SparkplugEdge(
        topics: SparkplugTopics(group: "g", edgeNode: "e"), devices: [device], savedBdSeq: saved,
        saveBdSeq: { value in store?.values.withLock { $0.append(value) } })
}

private func reading(_ point: String, _ value: PointValue?, _ quality: Quality = .good) -> Reading {
    Reading(
        device: "th-1", point: point, quantity: "x", unit: "", value: value, quality: quality,
        acquiredAt: 1_800_000_000_000)
}

@Suite("Sparkplug B edge node state")
struct SparkplugEdgeTests {
    @Test("topics follow spBv1.0/<group>/<type>/<edge node>[/<device>]")
    func topics() {
        let t = SparkplugTopics(group: "g", edgeNode: "e")
        #expect(t.nbirth == "spBv1.0/g/NBIRTH/e" && t.ndeath == "spBv1.0/g/NDEATH/e" && t.ncmd == "spBv1.0/g/NCMD/e")
        #expect(t.dbirth("d") == "spBv1.0/g/DBIRTH/e/d" && t.ddata("d") == "spBv1.0/g/DDATA/e/d")
        #expect(SparkplugTopics.state(hostId: "h") == "spBv1.0/STATE/h")
    }

    @Test("each Will takes the next bdSeq (0-255, wrapping), persisted before use; the NBIRTH carries it")
    func bdSeq() throws {
        let store = Saved()
        let e = edge(saved: 254, store: store)
        _ = e.nextWill()
        let will = e.nextWill()
        #expect(store.values.withLock { $0 } == [255, 0])
        let death = try SpBPayload(serializedBytes: will.payload)
        #expect(will.topic == "spBv1.0/g/NDEATH/e")
        #expect(death.metrics.map { $0.name } == ["bdSeq"] && death.metrics[0].longValue == 0 && !death.hasSeq)
        let births = e.births(at: 1_800_000_000_000)
        let nbirth = try SpBPayload(serializedBytes: births[0].payload)
        #expect(births.map { $0.topic } == ["spBv1.0/g/NBIRTH/e", "spBv1.0/g/DBIRTH/e/th-1"])
        #expect(nbirth.seq == 0 && nbirth.metrics.map { $0.name } == ["bdSeq", "Node Control/Rebirth"])
        #expect(nbirth.metrics[0].longValue == 0)
    }

    @Test("DBIRTH declares every point with name, alias, datatype, unit; null until a value was sent")
    func dbirth() throws {
        let e = edge()
        let dbirth = try SpBPayload(serializedBytes: e.births(at: 1)[1].payload)
        #expect(dbirth.seq == 1)
        #expect(dbirth.metrics.map { $0.name } == ["temp", "count"] && dbirth.metrics.map { $0.alias } == [2, 3])
        #expect(dbirth.metrics.map { $0.datatype } == [10, 8])  // Double (scaled), UInt64 (unscaled u64)
        #expect(dbirth.metrics.allSatisfy { $0.isNull })
        #expect(dbirth.metrics[0].properties.keys == ["engUnit"])
        #expect(dbirth.metrics[0].properties.values[0].stringValue == "Cel")
    }

    @Test("DDATA carries aliases without names; seq counts on from the births; backlog is historical")
    func ddata() throws {
        let e = edge()
        _ = e.births(at: 1)
        let body = try #require(
            e.data(
                [reading("temp", .number(21.5)), reading("count", .number(7), .outOfRange)], device: "th-1"))
        let live = try SpBPayload(serializedBytes: e.frame(body, topic: "spBv1.0/g/DDATA/e/th-1", historical: false))
        #expect(live.seq == 2 && live.timestamp == 1_800_000_000_000)
        #expect(live.metrics.map { $0.alias } == [2, 3] && live.metrics.allSatisfy { !$0.hasName && !$0.hasDatatype })
        #expect(live.metrics[0].doubleValue == 21.5 && live.metrics[1].longValue == 7)
        #expect(live.metrics[1].properties.keys == ["Quality"])
        #expect(live.metrics[1].properties.values[0].stringValue == "out_of_range")
        let old = try SpBPayload(serializedBytes: e.frame(body, topic: "spBv1.0/g/DDATA/e/th-1", historical: true))
        #expect(old.seq == 3 && old.metrics.allSatisfy { $0.isHistorical })
        // The next birth carries the last live values.
        let rebirth = try SpBPayload(serializedBytes: e.births(at: 2)[1].payload)
        #expect(rebirth.metrics[0].doubleValue == 21.5 && !rebirth.metrics[0].isNull)
        #expect(rebirth.metrics.map { $0.datatype } == [10, 8] && rebirth.metrics.allSatisfy { $0.hasName })
    }

    @Test("seq wraps from 255 to 0")
    func seqWraps() throws {
        let e = edge()
        _ = e.births(at: 1)
        let body = try #require(e.data([reading("temp", .number(1))], device: "th-1"))
        var seqs: [UInt64] = []
        for _ in 0..<256 {
            seqs.append(try SpBPayload(serializedBytes: e.frame(body, topic: "t", historical: false)).seq)
        }
        #expect(seqs.first == 2 && seqs[253] == 255 && seqs[254] == 0)
    }

    @Test("a failed reading is null, never a number; a dead device sends no DDATA until it is born again")
    func nullAndDeath() throws {
        let e = edge()
        let body = try #require(e.data([reading("temp", nil, .deviceError)], device: "th-1"))
        let m = try SpBPayload(serializedBytes: body).metrics[0]
        #expect(m.isNull && m.value == nil)
        #expect(e.availabilityMessage(device: "th-1", online: false, at: 5)?.topic == "spBv1.0/g/DDEATH/e/th-1")
        #expect(e.data([reading("temp", .number(1))], device: "th-1") == nil)
        #expect(e.availabilityMessage(device: "th-1", online: true, at: 6)?.topic == "spBv1.0/g/DBIRTH/e/th-1")
        #expect(e.data([reading("temp", .number(1))], device: "th-1") != nil)
    }

    @Test("NCMD Node Control/Rebirth = true asks for births; false or another topic does not")
    func rebirth() throws {
        let e = edge()
        func ncmd(_ value: Bool, topic: String = "spBv1.0/g/NCMD/e") throws -> MQTTMessage {
            var p = SpBPayload()
            var m = SpBPayload.Metric()
            m.name = "Node Control/Rebirth"
            m.datatype = 11
            m.booleanValue = value
            p.metrics = [m]
            return MQTTMessage(topic: topic, payload: try p.serializedBytes(), qos: 1, retain: false)
        }
        _ = e.nextWill()
        #expect(e.connected() == .births)
        #expect(e.inbound(try ncmd(true)) == .births)
        #expect(e.inbound(try ncmd(false)) == SessionStep.none)
        #expect(e.inbound(try ncmd(true, topic: "spBv1.0/g/NCMD/other")) == SessionStep.none)
        let garbage = MQTTMessage(topic: "spBv1.0/g/NCMD/e", payload: [0xff, 0xff], qos: 1, retain: false)
        #expect(e.inbound(garbage) == SessionStep.none)
    }
}

@Suite("Sparkplug integer datatypes")
struct SparkplugIntegerTests {
    @Test("unscaled 16- and 32-bit integers keep an integer datatype: UInt16, UInt32, and Int32 in two's complement")
    func integers() throws {
        let points = [
            PointSpec(name: "u16", quantity: "counter", table: .holding, address: 1, type: .u16, unit: ""),
            PointSpec(name: "u32", quantity: "counter", table: .holding, address: 2, type: .u32, unit: ""),
            PointSpec(name: "i16", quantity: "counter", table: .holding, address: 4, type: .i16, unit: ""),
            PointSpec(name: "i32", quantity: "counter", table: .holding, address: 5, type: .i32, unit: ""),
            PointSpec(name: "u16s", quantity: "x", table: .holding, address: 7, type: .u16, scale: 0.1, unit: ""),
        ]
        let p = DeviceProfile(id: "i", manufacturer: "T", model: "I", source: "unit test", points: points)
        let device = DeviceConfig(name: "d", bus: "net", unitId: 1, profile: p, pollInterval: .seconds(5))
        let e = SparkplugEdge(
            topics: SparkplugTopics(group: "g", edgeNode: "e"), devices: [device], savedBdSeq: nil, saveBdSeq: { _ in })
        let dbirth = try SpBPayload(serializedBytes: e.births(at: 1)[1].payload)
        #expect(dbirth.metrics.map { $0.datatype } == [6, 7, 3, 3, 10])
        func read(_ point: String, _ value: Double) -> Reading {
            Reading(
                device: "d", point: point, quantity: "x", unit: "", value: .number(value), quality: .good,
                acquiredAt: 1)
        }
        let body = try #require(
            e.data(
                [
                    read("u16", 65535), read("u32", 4_294_967_295), read("i16", -123), read("i32", -1_234_567),
                    read("u16s", 12.3),
                ], device: "d"))
        let m = try SpBPayload(serializedBytes: body).metrics
        #expect(m[0].intValue == 65535 && m[1].intValue == 4_294_967_295)
        #expect(m[2].intValue == UInt32(bitPattern: -123) && m[3].intValue == UInt32(bitPattern: -1_234_567))
        #expect(m[4].doubleValue == 12.3)
        // A value the type cannot hold is null, never a wrapped number.
        let over = try #require(e.data([read("u16", 70000), read("i16", -1.5)], device: "d"))
        #expect(try SpBPayload(serializedBytes: over).metrics.allSatisfy { $0.isNull })
    }
}
