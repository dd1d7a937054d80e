import Foundation
import Testing

@testable import PantauMQTT

@Suite("Gateway status payloads")
struct StatusPayloadTests {
    @Test("online and offline are JSON with state, version and time")
    func shapes() throws {
        let online = try JSONSerialization.jsonObject(with: Data(StatusPayload.online(version: "1.0", at: 42)))
        #expect((online as? [String: Any])?["state"] as? String == "online")
        #expect((online as? [String: Any])?["ts"] as? Int == 42)
        let offline = try JSONSerialization.jsonObject(
            with: Data(StatusPayload.offline(reason: "stopped", version: "1.0", at: 7)))
        #expect((offline as? [String: Any])?["reason"] as? String == "stopped")
    }

    @Test("version strings are escaped", arguments: ["plain", "quo\"te", "back\\slash", "tab\there", "ctl\u{01}"])
    func escaping(version: String) throws {
        let object = try JSONSerialization.jsonObject(with: Data(StatusPayload.online(version: version, at: 1)))
        #expect((object as? [String: Any])?["version"] as? String == version)
    }
}

@Suite("libmosquitto results as MQTTError codes")
struct MQTTErrorMappingTests {
    @Test(
        "each MOSQ_ERR class maps to the code a technician acts on",
        arguments: [
            (Int32(15), MQTTError.Code.resolve),  // MOSQ_ERR_EAI
            (Int32(7), MQTTError.Code.tcp),  // MOSQ_ERR_CONN_LOST
            (Int32(8), MQTTError.Code.tls),  // MOSQ_ERR_TLS
            (Int32(2), MQTTError.Code.protocol),  // MOSQ_ERR_PROTOCOL
            (Int32(11), MQTTError.Code.auth),  // MOSQ_ERR_AUTH
            (Int32(12), MQTTError.Code.notAuthorized),  // MOSQ_ERR_ACL_DENIED
            (Int32(19), MQTTError.Code.timeout),  // MOSQ_ERR_KEEPALIVE
        ])
    func library(rc: Int32, code: MQTTError.Code) {
        let error = MQTTError.library(rc, context: "b:1883", errnoValue: 0)
        #expect(error.code == code)
        #expect(error.message.hasPrefix("b:1883: "))
    }

    @Test("MOSQ_ERR_ERRNO reads the errno: refused is tcp, timed out is timeout")
    func errnoMapping() {
        #expect(MQTTError.library(14, context: "c", errnoValue: ECONNREFUSED).code == .tcp)
        #expect(MQTTError.library(14, context: "c", errnoValue: ETIMEDOUT).code == .timeout)
        #expect(MQTTError.library(14, context: "c", errnoValue: ECONNREFUSED).message.contains("refused"))
    }
}
