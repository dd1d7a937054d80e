import ArgumentParser
import PantauCore
import PantauMQTT
import PantauPlatform

/// How the command-center tools (`monitor`, `cmd`) reach the broker: the gateway's own connection settings (host,
/// port, TLS, user, password file), given as options because the center has no gateway.yaml.
struct BrokerOptions: ParsableArguments {
    @Option(help: "Broker host.") var host = "127.0.0.1"
    @Option(help: "Broker port (default 1883, or 8883 with --ca-file).") var port: Int?
    @Option(help: "CA certificate that signed the broker's certificate: connects with TLS 1.2+.") var caFile: String?
    @Option(help: "Client certificate (with --key-file).") var certFile: String?
    @Option(help: "Client certificate's private key.") var keyFile: String?
    @Option(help: "MQTT username.") var username: String?
    @Option(help: "File holding the MQTT password (readable only by you).") var passwordFile: String?
    @Option(help: "Topic prefix of the gateways (mqtt.topic_prefix).") var prefix = "pantau"

    func validate() throws {
        if (certFile == nil) != (keyFile == nil) { throw ValidationError("--cert-file and --key-file go together") }
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be 1-65535") }
    }

    /// A connected client with these settings; exits 69 when the broker cannot be reached.
    func connect(clientIdPrefix: String) throws -> MQTTClient {
        var password: String?
        if let passwordFile {
            if let mode = FileSystem.mode(passwordFile),
                let problem = MQTTConfig.passwordFileProblem(path: passwordFile, mode: mode)
            {
                throw fail(problem, code: .config)
            }
            do {
                password = try FileSystem.readText(passwordFile).trimmingSuffixNewlines()
            } catch {
                throw fail("cannot read the password file: \(error)", code: .config)
            }
        }
        let tls = caFile.map { MQTTConfig.TLS(caFile: $0, certFile: certFile, keyFile: keyFile) }
        let brokerPort = port ?? MQTTConfig.defaultPort(tls: tls != nil)
        let id = "\(clientIdPrefix)-\(UInt32.random(in: 0...UInt32.max))"
        let config = MQTTConfig(
            brokers: [MQTTConfig.Broker(host: host, port: brokerPort)], clientId: id, username: username,
            password: password, tls: tls, topicPrefix: prefix)
        do {
            let client = try MQTTClient(config: config)
            try client.connect(host: host, port: brokerPort, keepaliveSeconds: 30, timeoutMs: 10_000)
            return client
        } catch {
            throw fail("cannot connect to \(host):\(brokerPort): \(error)", code: .unavailable)
        }
    }
}

extension String {
    func trimmingSuffixNewlines() -> String {
        var text = self
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text
    }
}
