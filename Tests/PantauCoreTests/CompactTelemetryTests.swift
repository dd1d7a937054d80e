import PantauCore
import Testing

@Suite("Compact SenML (mqtt.format: senml-compact)")
struct CompactTelemetryTests {
    let identity = GatewayIdentity(site: "tng", id: "gw-01")
    let t: UnixMillis = 1_764_460_800_250

    func reading(
        _ point: String, _ value: PointValue?, _ quality: Quality = .good, unit: String = "Cel",
        at time: UnixMillis? = nil
    ) -> Reading {
        Reading(
            device: "th", point: point, quantity: "temperature", unit: unit, value: value, quality: quality,
            acquiredAt: time ?? t)
    }

    func compact(_ readings: [Reading]) -> String? {
        PayloadEncoder.telemetry(readings, identity: identity, device: "th", compact: true)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("good readings carry only name and value; the first also the time")
    func goodReadingsAreNameAndValue() {
        let body = compact([reading("temp", .number(21.5)), reading("rh", .integer(55), unit: "%RH")])
        #expect(body == #"[{"bt":1764460800.25,"n":"temp","v":21.5},{"n":"rh","v":55}]"#)
    }

    @Test("a reading that is not good keeps its quality; a failed one has no value")
    func badQualityIsKept() {
        let body = compact([
            reading("temp", .number(900), .outOfRange), reading("rh", nil, .deviceError),
            reading("ok", .flag(true)), reading("id", .text("AB12")),
        ])
        #expect(
            body == #"[{"bt":1764460800.25,"n":"temp","q":"out_of_range","v":900},"#
                + #"{"n":"rh","q":"device_error"},{"n":"ok","vb":true},{"n":"id","vs":"AB12"}]"#)
    }

    @Test("with the delivery fields framed in, exact bytes as on the wire")
    func framed() throws {
        let body = try #require(
            PayloadEncoder.telemetry(
                [reading("temp", .number(21.5)), reading("rh", .integer(55), at: t + 500)],
                identity: identity, device: "th", compact: true))
        let wire = String(decoding: PayloadFraming.frame(body, seq: 42, historical: true), as: UTF8.self)
        #expect(wire == #"[{"seq":42,"hist":true,"bt":1764460800.25,"n":"temp","v":21.5},{"n":"rh","t":0.5,"v":55}]"#)
    }

    @Test("a compact record costs about 20 bytes against SenML's 45")
    func size() throws {
        let readings = [reading("temp", .number(21.5)), reading("temp2", .number(22.5))]
        let full = try #require(PayloadEncoder.telemetry(readings, identity: identity, device: "th"))
        let small = try #require(PayloadEncoder.telemetry(readings, identity: identity, device: "th", compact: true))
        // The second record alone: {"n":"temp2","v":22.5} plus its comma.
        #expect(small.count == #"[{"bt":1764460800.25,"n":"temp","v":21.5},{"n":"temp2","v":22.5}]"#.utf8.count)
        #expect(
            full.count - small.count
                == #""bn":"urn:dev:pantau:tng:gw-01:th:","q":"good","u":"Cel","q":"good","u":"Cel","#.utf8.count)
    }
}
