import ArgumentParser
import PantauCore
import PantauGateway
import PantauMQTT

struct MQTTTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt-test",
        abstract: "Connect with the configured broker settings, publish to the test topic and read it back.",
        discussion:
            "Each step is printed; the first failure says why: name resolution, TCP, TLS verification, authentication, authorisation."
    )

    @OptionGroup var options: ConfigOption
    @Option(help: "Which configured broker to test (0 is the first).") var broker = 0
    @Option(help: "Give up after this many milliseconds per step.") var timeoutMs = 5000
    @Flag(help: "Print JSON.") var json = false

    struct Step: Encodable {
        var name: String
        var ok: Bool
        var detail: String
    }

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        guard config.mqtt.brokers.indices.contains(broker) else {
            throw fail(
                "there is no broker \(broker); the configuration lists \(config.mqtt.brokers.count)", code: .usage)
        }
        let topics = TopicScheme(prefix: config.mqtt.topicPrefix, identity: config.identity)
        let b = config.mqtt.brokers[broker]
        if !json {
            print(
                "testing \(b.host):\(b.port)\(config.mqtt.tls == nil ? "" : " with TLS") as \(config.mqtt.username ?? "anonymous"), topic \(topics.test)"
            )
        }
        let steps = MQTTProbe.run(config: config.mqtt, topic: topics.test, timeoutMs: timeoutMs, brokerIndex: broker)
        if json {
            printJSON(steps.map { Step(name: $0.name, ok: $0.ok, detail: $0.detail) })
        } else {
            for s in steps { print("\(s.ok ? "ok  " : "FAIL") \(s.name.padding(13)) \(s.detail)") }
        }
        if let failed = steps.first(where: { !$0.ok }) {
            throw fail("\(failed.name) failed: \(failed.detail)", hint: hint(for: failed.name), code: .unavailable)
        }
    }

    func hint(for step: String) -> String {
        switch step {
        case "resolve": return "check the broker host name and the board's DNS (/etc/resolv.conf)"
        case "tcp": return "check the port, the broker is running, and no firewall blocks it"
        case "tls": return "check tls.ca_file is the CA that signed the broker's certificate, and the board's clock"
        case "mqtt connect": return "check username, password_file/password_env, and the client certificate"
        case "subscribe", "publish":
            return "the broker's ACL must allow this client to publish and subscribe to the test topic"
        default: return "the message did not come back: check the broker's ACL and bridge settings"
        }
    }
}
