import PantauCore
import Testing

private let library = ProfileLibrary(profiles: [
    try! ProfileParser.parse(
        """
        id: test-th
        manufacturer: Test
        model: TH
        source: "unit test"
        points:
          - {name: temperature, quantity: temperature, table: input, address: 1, type: i16, scale: 0.1, unit: Cel}
        """, file: "test-th.yaml"
    ).get()
])

private func mqtt(_ extra: String) -> Result<GatewayConfig, ConfigurationError> {
    let text = """
        gateway: {site: tangerang, id: gw-01}
        buses: [{name: net, type: tcp, host: 10.0.0.5}]
        devices: [{name: th-1, bus: net, unit: 1, profile: test-th, poll_interval: 5s}]
        mqtt: {brokers: [broker.example]\(extra)}
        journal: {path: /tmp/j.sqlite}
        """
    return ConfigParser.parse(text, file: "gw.yaml", library: library, environment: { _ in nil })
}

@Suite("MQTT delivery settings: live window and reconnect bound")
struct MQTTDeliveryConfigTests {
    @Test("the hist threshold defaults to 60 s and the longest reconnect wait to 5 s")
    func defaults() throws {
        let config = try mqtt("").get()
        #expect(config.mqtt.liveWindow == .seconds(60))
        #expect(config.mqtt.reconnectMaxSeconds == 5)
    }

    @Test("live_window sets the hist threshold")
    func liveWindow() throws {
        #expect(try mqtt(", live_window: 5m").get().mqtt.liveWindow == .minutes(5))
    }

    @Test("a live_window below a second is refused with its position")
    func tooShort() {
        guard case .failure(let error) = mqtt(", live_window: 10ms") else {
            Issue.record("accepted a 10 ms live window")
            return
        }
        #expect("\(error)".contains("gw.yaml:4:"))
    }
}

@Suite("mqtt.format")
struct MQTTFormatConfigTests {
    @Test("SenML by default; senml-compact and sparkplug are accepted")
    func known() throws {
        #expect(try mqtt("").get().mqtt.format == .senml)
        #expect(try mqtt(", format: senml-compact").get().mqtt.format == .senmlCompact)
        #expect(try mqtt(", format: sparkplug").get().mqtt.format == .sparkplug)
    }

    @Test("an unknown format is refused with its position and the known names")
    func unknown() {
        guard case .failure(let error) = mqtt(", format: cbor") else {
            Issue.record("accepted format cbor")
            return
        }
        #expect("\(error)".contains("gw.yaml:4:"))
        #expect("\(error)".contains("senml, senml-compact, sparkplug"))
    }
}
