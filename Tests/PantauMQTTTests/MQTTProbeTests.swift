import Foundation
import PantauCore
import Testing

@testable import PantauMQTT

private func config(
    _ broker: TestBroker, username: String? = nil, password: String? = nil, tls: MQTTConfig.TLS? = nil
) -> MQTTConfig {
    MQTTConfig(
        brokers: [MQTTConfig.Broker(host: broker.host, port: broker.port)], clientId: "gw-probe",
        username: username, password: password, tls: tls)
}

private func names(_ steps: [ProbeStep]) -> [String] { steps.map(\.name) }

@Suite("MQTTProbe (pantau mqtt-test) against a real mosquitto", .serialized)
struct MQTTProbeTests {
    @Test("an open broker passes every step, the token comes back")
    func plainBroker() throws {
        let broker = try TestBroker()
        let steps = MQTTProbe.run(config: config(broker), topic: "pantau/s/gw/test", timeoutMs: 5000)
        #expect(names(steps) == ["resolve", "tcp", "mqtt connect", "subscribe", "publish", "receive"])
        #expect(steps.allSatisfy { $0.ok }, "\(steps)")
        #expect(steps[0].detail.contains("127.0.0.1"))
    }

    @Test("the right password connects; a wrong one fails the mqtt connect step as an auth problem")
    func passwordFile() throws {
        let directory = try TestBroker.makeTemporaryDirectory()
        let passwords = directory.appendingPathComponent("passwd").path
        try TestBroker.run("/usr/bin/mosquitto_passwd", ["-b", "-c", passwords, "installer", "s3cret"], in: directory)
        chmod(passwords, 0o644)
        let broker = try TestBroker(
            listenerLines: ["allow_anonymous false", "password_file \(passwords)"], directory: directory)

        let good = MQTTProbe.run(
            config: config(broker, username: "installer", password: "s3cret"), topic: "t/probe", timeoutMs: 5000)
        #expect(good.allSatisfy { $0.ok }, "\(good)")
        #expect(good.first { $0.name == "mqtt connect" }?.detail.contains("as installer") == true)

        let bad = MQTTProbe.run(
            config: config(broker, username: "installer", password: "wrong"), topic: "t/probe", timeoutMs: 5000)
        #expect(names(bad) == ["resolve", "tcp", "mqtt connect"])
        let failed = try #require(bad.last)
        #expect(!failed.ok)
        #expect(failed.detail.hasPrefix("auth (reason 0x8"), "\(failed.detail)")
        #expect(failed.detail.contains("check the username and password"))
    }

    @Test("TLS with the right CA verifies the broker; a foreign CA fails the tls step as a verification failure")
    func tlsListener() throws {
        let directory = try TestBroker.makeTemporaryDirectory()
        let certificates = try TestCertificates(in: directory)
        let broker = try TestBroker(
            listenerLines: [
                "allow_anonymous true", "cafile \(certificates.caFile)", "certfile \(certificates.serverCert)",
                "keyfile \(certificates.serverKey)",
            ], directory: directory)

        let good = MQTTProbe.run(
            config: config(broker, tls: MQTTConfig.TLS(caFile: certificates.caFile)), topic: "t/tls", timeoutMs: 5000)
        #expect(names(good) == ["resolve", "tcp", "tls", "mqtt connect", "subscribe", "publish", "receive"])
        #expect(good.allSatisfy { $0.ok }, "\(good)")

        let bad = MQTTProbe.run(
            config: config(broker, tls: MQTTConfig.TLS(caFile: certificates.otherCAFile)), topic: "t/tls",
            timeoutMs: 5000)
        #expect(names(bad) == ["resolve", "tcp", "tls"])
        let failed = try #require(bad.last)
        #expect(!failed.ok)
        #expect(failed.detail.contains("is not signed by the CA in \(certificates.otherCAFile)"), "\(failed.detail)")
        #expect(failed.detail.contains("certificate verify failed"), "\(failed.detail)")
    }

    @Test("a listener that requires client certificates accepts the gateway's certificate and key")
    func mutualTLS() throws {
        let directory = try TestBroker.makeTemporaryDirectory()
        let certificates = try TestCertificates(in: directory)
        let broker = try TestBroker(
            listenerLines: [
                "allow_anonymous true", "cafile \(certificates.caFile)", "certfile \(certificates.serverCert)",
                "keyfile \(certificates.serverKey)", "require_certificate true",
            ], directory: directory)
        let tls = MQTTConfig.TLS(
            caFile: certificates.caFile, certFile: certificates.clientCert, keyFile: certificates.clientKey)
        let steps = MQTTProbe.run(config: config(broker, tls: tls), topic: "t/mtls", timeoutMs: 5000)
        #expect(names(steps) == ["resolve", "tcp", "tls", "mqtt connect", "subscribe", "publish", "receive"])
        #expect(steps.allSatisfy { $0.ok }, "\(steps)")

        let anonymous = MQTTConfig.TLS(caFile: certificates.caFile)
        let refused = MQTTProbe.run(config: config(broker, tls: anonymous), topic: "t/mtls", timeoutMs: 5000)
        #expect(names(refused) == ["resolve", "tcp", "tls"])
        #expect(refused.last?.ok == false)
        // The alert reaches the client either as an OpenSSL "certificate required" line or as a bare EPROTO,
        // depending on timing; either way the handshake is what failed.
    }

    @Test("a port nobody listens on fails the tcp step")
    func closedPort() throws {
        let port = try TestBroker.freePort()
        let config = MQTTConfig(brokers: [MQTTConfig.Broker(host: "127.0.0.1", port: port)], clientId: "gw-probe")
        let steps = MQTTProbe.run(config: config, topic: "t", timeoutMs: 2000)
        #expect(names(steps) == ["resolve", "tcp"])
        #expect(steps.last?.ok == false)
        #expect(steps.last?.detail.contains("refused") == true)
    }

    @Test("a host name that does not resolve fails the resolve step")
    func unresolvable() {
        let config = MQTTConfig(
            brokers: [MQTTConfig.Broker(host: "no-such-broker.invalid", port: 1883)], clientId: "gw-probe")
        let steps = MQTTProbe.run(config: config, topic: "t", timeoutMs: 2000)
        #expect(names(steps) == ["resolve"])
        #expect(steps.first?.ok == false)
        #expect(steps.first?.detail.contains("no-such-broker.invalid") == true)
    }
}
