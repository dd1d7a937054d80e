import Foundation
import PantauCore
import Testing

@Suite struct PayloadTests {
    let identity = GatewayIdentity(site: "tng", id: "gw-01")

    func json(_ bytes: [UInt8]) throws -> Any { try JSONSerialization.jsonObject(with: Data(bytes)) }

    @Test func telemetryIsASenMLPackWithQualityAndNoInventedValues() throws {
        let t: UnixMillis = 1_764_460_800_250
        let readings = [
            Reading(
                device: "aq", point: "pm2_5", quantity: "pm2_5", unit: "ug/m3", value: .number(12.5), quality: .good,
                acquiredAt: t),
            Reading(
                device: "aq", point: "pm10", quantity: "pm10", unit: "ug/m3", value: .number(900), quality: .outOfRange,
                acquiredAt: t),
            Reading(
                device: "aq", point: "co", quantity: "co", unit: "ppb", value: nil, quality: .deviceError, acquiredAt: t
            ),
            Reading(
                device: "aq", point: "serial", quantity: "status", unit: "", value: .text("AB12"), quality: .good,
                acquiredAt: t),
            Reading(
                device: "aq", point: "alarm", quantity: "status", unit: "", value: .flag(true), quality: .good,
                acquiredAt: t),
        ]
        let body = try #require(PayloadEncoder.telemetry(readings, identity: identity, device: "aq"))
        #expect(Array(body.prefix(2)) == Array("[{".utf8))
        let pack = try #require(try json(body) as? [[String: Any]])
        #expect(pack.count == 5)
        #expect(pack[0]["bn"] as? String == "urn:dev:pantau:tng:gw-01:aq:")
        #expect((pack[0]["bt"] as? Double).map { abs($0 - 1_764_460_800.25) < 1e-6 } == true)
        #expect(pack[0]["v"] as? Double == 12.5)
        #expect(pack[0]["q"] as? String == "good")
        #expect(pack[1]["q"] as? String == "out_of_range")
        #expect(pack[1]["bn"] == nil)
        #expect(pack[2]["v"] == nil && pack[2]["q"] as? String == "device_error")
        #expect(pack[3]["vs"] as? String == "AB12")
        #expect(pack[4]["vb"] as? Bool == true)
        #expect(pack.allSatisfy { $0["t"] == nil })
    }

    @Test func readingsAtDifferentTimesCarryRelativeTimes() throws {
        let readings = [
            Reading(
                device: "d", point: "a", quantity: "counter", unit: "", value: .number(1), quality: .good,
                acquiredAt: 1000),
            Reading(
                device: "d", point: "b", quantity: "counter", unit: "", value: .number(2), quality: .good,
                acquiredAt: 1500),
        ]
        let pack = try #require(
            try json(PayloadEncoder.telemetry(readings, identity: identity, device: "d")!) as? [[String: Any]])
        #expect(pack[0]["t"] == nil)
        #expect(pack[1]["t"] as? Double == 0.5)
    }

    @Test(arguments: [
        ("{\"a\":1}", false, "{\"seq\":7,\"a\":1}"),
        ("{}", false, "{\"seq\":7}"),
        ("[{\"bn\":\"x\"}]", true, "[{\"seq\":7,\"hist\":true,\"bn\":\"x\"}]"),
        ("[{}]", true, "[{\"seq\":7,\"hist\":true}]"),
    ])
    func framingInsertsTheDeliveryFields(body: String, historical: Bool, expected: String) {
        let framed = PayloadFraming.frame(Array(body.utf8), seq: 7, historical: historical)
        #expect(String(decoding: framed, as: UTF8.self) == expected)
    }
}
