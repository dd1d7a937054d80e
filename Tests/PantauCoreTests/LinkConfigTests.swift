import PantauCore
import Testing

private let profile = """
    id: test-th
    manufacturer: Test
    model: TH
    source: "unit test"
    points:
      - {name: temperature, quantity: temperature, table: input, address: 1, type: i16, scale: 0.1, unit: Cel}
    """

private func parse(_ buses: String) -> Result<GatewayConfig, ConfigurationError> {
    let library = ProfileLibrary(profiles: [try! ProfileParser.parse(profile, file: "test-th.yaml").get()])
    let text = """
        gateway: {site: s, id: g}
        buses:
        \(buses)
        devices:
          - {name: a, bus: dtu, unit: 1, profile: test-th}
          - {name: b, bus: dtu, unit: 2, profile: test-th}
        mqtt: {brokers: [localhost]}
        """
    return ConfigParser.parse(text, file: "gw.yaml", library: library, environment: { _ in nil })
}

@Suite struct LinkConfigTests {
    @Test func anRTUOverTCPBusKeepsTheSerialSidesSilence() throws {
        let config = try parse("  - {name: dtu, type: rtu_over_tcp, host: 10.1.2.3, port: 4001, baud: 9600}").get()
        guard case .rtuOverTCP(let s) = config.buses[0].transport else {
            Issue.record("expected an rtu_over_tcp bus")
            return
        }
        #expect(s.host == "10.1.2.3" && s.port == 4001)
        #expect(s.serial == SerialSettings(baud: 9600))
        #expect(s.effectiveInterFrameMicros == 3646)  // 3.5 characters of 10 bits at 9600 baud
        #expect(config.devices.map(\.unitId) == [1, 2])
    }

    @Test func withoutABaudASmallGapIsKept() throws {
        let config = try parse("  - {name: dtu, type: rtu_over_tcp, host: dtu.example}").get()
        #expect(config.buses[0].transport == .rtuOverTCP(RTUOverTCPSettings(host: "dtu.example", port: 502)))
        #expect(RTUOverTCPSettings(host: "h", port: 1).effectiveInterFrameMicros == 1750)
        #expect(RTUOverTCPSettings(host: "h", port: 1, interFrameDelayMicros: 0).effectiveInterFrameMicros == 0)
    }

    @Test func mistakesNameLineColumnAndField() {
        let missing = parse("  - {name: dtu, type: rtu_over_tcp, port: 4001}")
        #expect(missing.failureText.contains("gw.yaml:3:5"))
        #expect(missing.failureText.contains("'host'"))
        let baud = parse("  - {name: dtu, type: rtu_over_tcp, host: h, baud: 9601}")
        #expect(baud.failureText.contains("baud 9601 of bus 'dtu' is not a standard rate"))
        let unknown = parse("  - {name: dtu, type: rtu_over_tcp, host: h, device: /dev/ttyS0}")
        #expect(unknown.failureText.contains("unknown key 'device'"))
        let unit = parse("  - {name: dtu, type: rtu_over_tcp, host: h}").map { _ in () }
        #expect((try? unit.get()) != nil)
    }
}

extension Result where Failure == ConfigurationError {
    var failureText: String {
        if case .failure(let e) = self { return e.description }
        return ""
    }
}
