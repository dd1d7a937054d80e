import Foundation
import PantauCore
import Testing

private let profileText = """
    id: test-th
    manufacturer: Test
    model: TH
    source: "unit test"
    points:
      - {name: temperature, quantity: temperature, table: input, address: 1, type: i16, scale: 0.1, unit: Cel}
      - {name: humidity, quantity: relative_humidity, table: input, address: 2, type: u16, scale: 0.1, unit: "%RH",
         range: [0, 100]}
    """

private let library = ProfileLibrary(profiles: [try! ProfileParser.parse(profileText, file: "test-th.yaml").get()])

private func parse(_ text: String, env: [String: String] = [:]) -> Result<GatewayConfig, ConfigurationError> {
    ConfigParser.parse(text, file: "gw.yaml", library: library, environment: { env[$0] })
}

private let good = """
    gateway: {site: tangerang, id: gw-01}
    buses:
      - {name: rs485-1, type: rtu, device: /dev/ttyUSB0, baud: 9600, parity: even}
      - {name: net, type: tcp, host: 10.0.0.5}
    devices:
      - {name: th-1, bus: rs485-1, unit: 1, profile: test-th, poll_interval: 5s}
      - {name: th-2, bus: net, unit: 255, profile: test-th, poll_interval: 500ms, timeout_ms: 200, retries: 0}
    mqtt:
      brokers: [broker.example:1884, {host: backup.example}]
      username: gw
      password_env: PANTAU_PW
    journal: {path: /tmp/j.sqlite, durability: normal, max_bytes: 64MiB, max_age: 3d}
    """

@Suite struct ConfigParserTests {
    @Test func parsesAValidConfiguration() throws {
        let config = try parse(good, env: ["PANTAU_PW": "secret"]).get()
        #expect(config.identity == GatewayIdentity(site: "tangerang", id: "gw-01"))
        #expect(config.buses.count == 2)
        guard case .rtu(let rtu) = config.buses[0].transport else {
            Issue.record("first bus should be RTU")
            return
        }
        #expect(rtu.serial.parity == .even)
        #expect(rtu.serial.baud == 9600)
        #expect(config.buses[1].transport == .tcp(host: "10.0.0.5", port: 502))
        #expect(config.devices.map(\.name) == ["th-1", "th-2"])
        #expect(config.devices[1].pollInterval == Interval(milliseconds: 500))
        #expect(config.devices[1].timing.responseTimeoutMs == 200)
        #expect(config.devices[1].timing.retries == 0)
        #expect(
            config.mqtt.brokers == [
                .init(host: "broker.example", port: 1884), .init(host: "backup.example", port: 1883),
            ])
        #expect(config.mqtt.password == "secret")
        #expect(config.mqtt.clientId == "pantau-tangerang-gw-01")
        #expect(config.journal.durability == .normal)
        #expect(config.journal.maxBytes == 64 << 20)
        #expect(config.journal.maxAge == Interval(milliseconds: 3 * 86_400_000))
    }

    /// Each broken input and the `line:column` plus a key phrase of the error it must produce.
    static let broken: [(String, [(Int, Int, String)])] = [
        (good.replacingFirst("poll_interval: 5s", with: "pol_interval: 5s"), [(6, 59, "did you mean 'poll_interval'")]),
        (good.replacingFirst("unit: 1,", with: "unit: 0,"), [(6, 38, "outside 1-247")]),
        (good.replacingFirst("unit: 1,", with: "unit: 248,"), [(6, 38, "outside 1-247")]),
        (good.replacingFirst("unit: 1,", with: "unit: one,"), [(6, 38, "whole number")]),
        (
            good.replacingFirst("profile: test-th, poll_interval: 5s", with: "profile: test-hh, poll_interval: 5s"),
            [(6, 50, "unknown profile 'test-hh'")]
        ),
        (good.replacingFirst("name: th-2", with: "name: th-1"), [(7, 12, "duplicate device name 'th-1'")]),
        (
            good.replacingFirst(
                "  - {name: net,", with: "  - {name: rs485-2, type: rtu, device: /dev/ttyUSB0}\n  - {name: net,"),
            [(4, 40, "already owns")]
        ),
        (good.replacingFirst("poll_interval: 5s", with: "poll_interval: often"), [(6, 74, "duration")]),
        (good.replacingFirst("baud: 9600", with: "baud: 9601"), [(3, 60, "not a standard rate")]),
        (
            good.replacingFirst("gateway: {site: tangerang, id: gw-01}", with: "gateway: {site: tangerang}"),
            [(1, 10, "missing the required key 'id'")]
        ),
        (good.replacingFirst("bus: net", with: "bus: nett"), [(7, 23, "not defined under 'buses'")]),
        (good, [(11, 17, "PANTAU_PW")]),
        ("gateway: {site: a, id: b\nbuses: []\n", [(2, 6, "YAML syntax")]),
    ]

    @Test(arguments: broken.indices)
    func reportsEachErrorWithItsPlace(index: Int) {
        let (text, expected) = Self.broken[index]
        // Every case but the one about it has the password variable set, so each shows only its own error.
        let env = text == good ? [:] : ["PANTAU_PW": "x"]
        guard case .failure(let error) = parse(text, env: env) else {
            Issue.record("expected errors for case \(index)")
            return
        }
        for (line, column, phrase) in expected {
            let hit = error.diagnostics.first { $0.message.contains(phrase) }
            #expect(hit != nil, "case \(index): no error containing \(phrase) in \(error)")
            #expect(
                hit?.location == SourceLocation(file: "gw.yaml", line: line, column: column), "case \(index): \(error)")
        }
        #expect(error.diagnostics.count == expected.count, "case \(index): \(error)")
    }

    @Test func namesBothBoundsOfAnIntegerOrNumberOutOfRange() {
        let text = good.replacingFirst("timeout_ms: 200", with: "timeout_ms: 5")
            .replacingFirst("max_age: 3d}", with: "max_age: 3d, backlog_share: 2}")
        guard case .failure(let error) = parse(text, env: ["PANTAU_PW": "x"]) else {
            Issue.record("expected errors")
            return
        }
        #expect(
            error.diagnostics.map(\.description) == [
                "gw.yaml:7:91: 'timeout_ms' in device 'th-2' must be between 10 and 60000, found 5",
                "gw.yaml:12:98: 'backlog_share' in 'journal' in the configuration must be between 0.05 and 1.0, found 2.0",
            ])
    }

    @Test func reportsEveryErrorNotOnlyTheFirst() {
        let text = good.replacingFirst("unit: 1,", with: "unit: 0,").replacingFirst("baud: 9600", with: "baud: 9601")
            .replacingFirst("durability: normal", with: "durability: sometimes")
        guard case .failure(let error) = parse(text, env: ["PANTAU_PW": "x"]) else {
            Issue.record("expected errors")
            return
        }
        #expect(error.diagnostics.count == 3, "\(error)")
        #expect(error.diagnostics.contains { $0.message.contains("not a standard rate") })
        #expect(error.diagnostics.contains { $0.message.contains("outside 1-247") })
        #expect(error.diagnostics.contains { $0.message.contains("must be one of full, normal") })
        #expect(error.description.contains("gw.yaml:6:38: unit id 0"))
    }

    @Test func refusesAPasswordWrittenInTheFile() {
        let text = good.replacingFirst("password_env: PANTAU_PW", with: "password: hunter2")
        guard case .failure(let error) = parse(text) else {
            Issue.record("expected an error")
            return
        }
        #expect(error.diagnostics.contains { $0.message.contains("password_file or password_env") })
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { fatalError("'\(target)' not in text") }
        return replacingCharacters(in: range, with: replacement)
    }
}
