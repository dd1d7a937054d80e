import Foundation
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

private let framed = """
    id: test-pm
    manufacturer: Test
    model: PM
    source: "unit test"
    serial: {baud: 9600}
    frame:
      mode: passive
      start: "AA C0"
      length: 10
      end: "AB"
      checksum: {kind: sum8, from: 2, to: 8, at: 8}
      query: "AA B4 04"
    points:
      - {name: pm2_5, quantity: pm2_5, table: input, address: 1, type: u16, order: BA, scale: 0.1, unit: ug/m3}
    frame_vectors:
      - {frame: "AA C0 D4 04 3A 0A A1 60 1D AB", expect: {pm2_5: 123.6}}
      - {frame: "AA C0 D4 04 3A 0A A1 60 1E AB", expect_fault: checksum}
    """

private func parseWithFrames(_ body: String) -> Result<GatewayConfig, ConfigurationError> {
    let library = ProfileLibrary(profiles: [
        try! ProfileParser.parse(profile, file: "test-th.yaml").get(),
        try! ProfileParser.parse(framed, file: "test-pm.yaml").get(),
    ])
    let text = """
        gateway: {site: s, id: g}
        \(body)
        mqtt: {brokers: [localhost]}
        """
    return ConfigParser.parse(text, file: "gw.yaml", library: library, environment: { _ in nil })
}

@Suite struct FrameConfigTests {
    @Test func aFrameProfileBecomesRegisterVectorsAndOneRead() throws {
        let p = try ProfileParser.parse(framed, file: "test-pm.yaml").get()
        #expect(p.frame?.length == 10)
        #expect(p.testVectors.count == 1)
        #expect(p.testVectors[0].registers[.input]?[1] == 0xD404)
        #expect(ProfileVectors.run(p).passed)
        #expect(ReadPlanner.plan(points: p.points, timing: p.timing).count == 1)
    }

    @Test func frameMistakesAreNamedWithLineAndColumn() {
        func errors(_ text: String) -> String {
            if case .failure(let e) = ProfileParser.parse(text, file: "p.yaml") { return e.description }
            return ""
        }
        let wrongVector = framed.replacingOccurrences(of: "expect_fault: checksum", with: "expect: {pm2_5: 1}")
        #expect(errors(wrongVector).contains("p.yaml:17:5:"))
        #expect(errors(wrongVector).contains("frame checksum sum8 is 0x1E, computed 0x1D"))
        let outside = framed.replacingOccurrences(of: "address: 1,", with: "address: 5,")
        #expect(errors(outside).contains("reads past the 10-byte frame"))
        let noQuery = framed.replacingOccurrences(of: "  query: \"AA B4 04\"\n", with: "")
        #expect(errors(noQuery).contains("a passive frame needs 'query'"))
        let badHex = framed.replacingOccurrences(of: "start: \"AA C0\"", with: "start: \"AA CZ\"")
        #expect(errors(badHex).contains("p.yaml:8:10"))
        let holding = framed.replacingOccurrences(of: "table: input", with: "table: holding")
        #expect(errors(holding).contains("must be in the input table"))
    }

    @Test func aUARTBusCarriesOneFramedSensorAndTakesItsLineSettings() throws {
        let config = try parseWithFrames(
            """
            buses:
              - {name: pm-port, type: uart, device: /dev/ttyS1, parity: even}
            devices:
              - {name: pm, bus: pm-port, unit: 1, profile: test-pm}
            """
        ).get()
        guard case .uart(let u) = config.buses[0].transport else {
            Issue.record("expected a uart bus")
            return
        }
        #expect(u.frame?.start == [0xAA, 0xC0])
        #expect(u.serial == SerialSettings(baud: 9600, parity: .even))
    }

    @Test func framedAndModbusDevicesMustSitOnTheirOwnKindOfBus() {
        func errors(_ body: String) -> String {
            if case .failure(let e) = parseWithFrames(body) { return e.description }
            return ""
        }
        let two = errors(
            """
            buses:
              - {name: pm-port, type: uart, device: /dev/ttyS1}
            devices:
              - {name: a, bus: pm-port, unit: 1, profile: test-pm}
              - {name: b, bus: pm-port, unit: 2, profile: test-pm}
            """)
        #expect(two.contains("gw.yaml:3:5: bus 'pm-port' is a uart bus: it carries exactly one framed sensor, found 2"))
        let modbusOnUART = errors(
            """
            buses:
              - {name: pm-port, type: uart, device: /dev/ttyS1}
            devices:
              - {name: a, bus: pm-port, unit: 1, profile: test-th}
            """)
        #expect(modbusOnUART.contains("describes no frame: use a bus of type rtu"))
        let framedOnRTU = errors(
            """
            buses:
              - {name: rs485, type: rtu, device: /dev/ttyS1}
            devices:
              - {name: a, bus: rs485, unit: 1, profile: test-pm}
            """)
        #expect(framedOnRTU.contains("a framed UART sensor (not Modbus): put it on a bus of type uart"))
        let shared = errors(
            """
            buses:
              - {name: rs485, type: rtu, device: /dev/ttyS1}
              - {name: pm-port, type: uart, device: /dev/ttyS1}
            devices:
              - {name: a, bus: pm-port, unit: 1, profile: test-pm}
            """)
        #expect(shared.contains("which bus 'rs485' already owns"))
    }
}

private let sdi12Profile = """
    id: test-level
    manufacturer: Test
    model: Level
    source: "unit test"
    sdi12: {command: MC, values: 2}
    points:
      - {name: level, quantity: water_level, table: input, address: 0, type: f64, unit: m}
      - {name: temperature, quantity: temperature, table: input, address: 4, type: f64, unit: Cel}
    sdi12_vectors:
      - {response: "0+3.14OqZ", expect: {level: 3.14}, description: "the specification's CRC example"}
    """

@Suite struct SDI12ConfigTests {
    private func parse(_ body: String) -> Result<GatewayConfig, ConfigurationError> {
        let library = ProfileLibrary(profiles: [
            try! ProfileParser.parse(profile, file: "test-th.yaml").get(),
            try! ProfileParser.parse(sdi12Profile, file: "test-level.yaml").get(),
        ])
        let text = "gateway: {site: s, id: g}\n\(body)\nmqtt: {brokers: [localhost]}\n"
        return ConfigParser.parse(text, file: "gw.yaml", library: library, environment: { _ in nil })
    }

    @Test func anSDI12ProfileGivesRegisterVectorsFromItsResponses() throws {
        let p = try ProfileParser.parse(sdi12Profile, file: "p.yaml").get()
        #expect(p.sdi12 == SDI12Spec(command: .MC, values: 2))
        #expect(ProfileVectors.run(p).passed)
        let bad = sdi12Profile.replacingOccurrences(of: "OqZ", with: "OqY")
        guard case .failure(let e) = ProfileParser.parse(bad, file: "p.yaml") else {
            Issue.record("a vector with a bad CRC must be refused")
            return
        }
        #expect(e.description.contains("p.yaml:10:5: SDI-12 vector 'the specification's CRC example': SDI-12 CRC"))
        let f32 = sdi12Profile.replacingOccurrences(of: "address: 4, type: f64", with: "address: 4, type: f32")
        guard case .failure(let e2) = ProfileParser.parse(f32, file: "p.yaml") else {
            Issue.record("an f32 point must be refused")
            return
        }
        #expect(e2.description.contains("must be `table: input, type: f64`"))
    }

    @Test func sensorsOnAnSDI12BusAreKeyedByAddress() throws {
        let config = try parse(
            """
            buses:
              - {name: sdi, type: sdi12, device: /dev/ttyUSB3}
            devices:
              - {name: a, bus: sdi, unit: 48, profile: test-level}
              - {name: b, bus: sdi, unit: 97, profile: test-level}
            """
        ).get()
        guard case .sdi12(let s) = config.buses[0].transport else {
            Issue.record("expected an sdi12 bus")
            return
        }
        #expect(s.serial == SDI12Settings.standardSerial)
        #expect(s.sensors.keys.sorted() == [48, 97])
    }

    @Test func unitsMustBeAddressesAndProfilesSDI12() {
        func errors(_ body: String) -> String {
            if case .failure(let e) = parse(body) { return e.description }
            return ""
        }
        let notAddress = errors(
            """
            buses:
              - {name: sdi, type: sdi12, device: /dev/ttyUSB3}
            devices:
              - {name: a, bus: sdi, unit: 5, profile: test-level}
            """)
        #expect(notAddress.contains("has unit 5, not an SDI-12 address"))
        let modbus = errors(
            """
            buses:
              - {name: sdi, type: sdi12, device: /dev/ttyUSB3}
            devices:
              - {name: a, bus: sdi, unit: 48, profile: test-th}
            """)
        #expect(modbus.contains("which has no 'sdi12' section"))
        let onRTU = errors(
            """
            buses:
              - {name: rs, type: rtu, device: /dev/ttyUSB3}
            devices:
              - {name: a, bus: rs, unit: 48, profile: test-level}
            """)
        #expect(onRTU.contains("an SDI-12 sensor (not Modbus): put it on a bus of type sdi12"))
    }
}
