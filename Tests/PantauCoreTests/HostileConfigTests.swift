import Foundation
import PantauCore
import PantauPlatform
import PantauYAML
import Testing

/// Issue 11: hostile or careless configuration input is refused with its place, never a crash, hang or "OK".
private let profileText = """
    id: test-th
    manufacturer: Test
    model: TH
    source: "unit test"
    points:
      - {name: temperature, quantity: temperature, table: input, address: 1, type: i16, scale: 0.1, unit: Cel}
      - {name: level, quantity: water_level, table: input, address: 3, type: u16, unit: cm}
      - {name: tips, quantity: rain_tips, table: input, address: 4, type: u16, unit: count}
      - {name: pm25, quantity: pm2_5, table: input, address: 5, type: u16, unit: ug/m3}
    """

private let library = ProfileLibrary(profiles: [try! ProfileParser.parse(profileText, file: "test-th.yaml").get()])

private func parse(_ text: String) -> Result<GatewayConfig, ConfigurationError> {
    ConfigParser.parse(text, file: "gw.yaml", library: library, environment: { _ in nil })
}

/// A config with one device whose mapping gets `deviceExtra`, and `tail` appended at the top level.
private func config(device deviceExtra: String = "", tail: String = "") -> String {
    """
    gateway: {site: s, id: g}
    buses: [{name: b, type: tcp, host: 127.0.0.1}]
    devices:
      - {name: d, bus: b, unit: 1, profile: test-th\(deviceExtra)}
    mqtt: {brokers: [127.0.0.1]}
    journal: {path: /tmp/j.sqlite}
    \(tail)
    """
}

private func errors(_ text: String) -> [Diagnostic] {
    switch parse(text) {
    case .success: return []
    case .failure(let e): return e.diagnostics
    }
}

@Suite struct HostileDurationTests {
    @Test(arguments: ["inf", "1e100ms", "1e300s", "9223372036854775807d", "3651d", "1e19"])
    func aDurationTooLongIsRefusedNotATrap(_ text: String) {
        let found = errors(config(device: ", poll_interval: \(text)"))
        #expect(found.count == 1)
        #expect(found.first?.message.contains("too long") == true)
        #expect(found.first?.location.line == 4)
    }

    @Test func nanAndNegativeDurationsAreRefused() {
        #expect(errors(config(device: ", poll_interval: nan")).first?.message.contains("duration") == true)
        #expect(errors(config(device: ", poll_interval: -1s")).first?.message.contains("negative") == true)
        #expect(Interval.parse("-inf") == .failure(.negative))
        #expect(Interval.parse("nan") == .failure(.notADuration))
        #expect(Interval.parse("3650d") == .success(Interval.maximum))
        #expect(Interval.parse("1.5s") == .success(Interval(milliseconds: 1500)))
    }

    @Test func heartbeatsWindowsAndSizesTooLargeAreRefused() {
        let text = config(
            device: ", report: {level: {heartbeat: 1e300s}}",
            tail: "aggregation: {windows: [1e20d]}\n")
        let found = errors(text)
        #expect(found.filter { $0.message.contains("too long") }.count == 2, "\(found)")
        let sizes = errors(
            config().replacingOccurrences(of: "/tmp/j.sqlite}", with: "/tmp/j.sqlite, max_bytes: 1e30GiB}"))
        #expect(sizes.count == 1)
        #expect(sizes.first?.message.contains("too large") == true)
        for text in ["inf GiB", "99999999999999999999999", "2TiB", "nanMiB"] {
            let e = errors(
                config().replacingOccurrences(of: "/tmp/j.sqlite}", with: "/tmp/j.sqlite, max_bytes: \(text)}"))
            #expect(e.count == 1, "\(text): \(e)")
        }
    }
}

@Suite struct AcceptedAsOKTests {
    @Test func onePortSpelledTwoWaysIsOnePort() {
        #expect(FileSystem.lexicallyNormalized("/dev//ttyUSB0") == "/dev/ttyUSB0")
        #expect(FileSystem.lexicallyNormalized("/dev/./ttyUSB0/") == "/dev/ttyUSB0")
        #expect(FileSystem.lexicallyNormalized("/dev/../dev/ttyUSB0") == "/dev/ttyUSB0")
        #expect(FileSystem.lexicallyNormalized("/../dev/ttyUSB0") == "/dev/ttyUSB0")
        #expect(FileSystem.lexicallyNormalized("./a/../../b") == "../b")
        let text = config().replacingOccurrences(
            of: "buses: [{name: b, type: tcp, host: 127.0.0.1}]",
            with: "buses: [{name: b, type: rtu, device: /dev/ttyUSB0}, {name: c, type: rtu, device: /dev//ttyUSB0}]")
        let found = errors(text)
        #expect(found.count == 1 && found[0].message.contains("already owns"), "\(found)")
    }

    @Test func sectionsMustFitWhatThePointMeasures() {
        var found = errors(config(device: ", flood: [{point: temperature, siaga3: 1, siaga2: 2, siaga1: 3}]"))
        #expect(found.count == 1 && found[0].message.contains("water_level"), "\(found)")
        found = errors(config(device: ", flood: [{point: level, siaga3: 1, siaga2: 2, siaga1: 3}]"))
        #expect(found.isEmpty, "\(found)")
        found = errors(config(device: ", rain: {point: tips, mm_per_count: 0, counter_modulus: -3}"))
        #expect(found.map(\.message).filter { $0.contains("more than 0") }.count == 2, "\(found)")
        found = errors(config(device: ", rain: {point: temperature}"))
        #expect(found.count == 1 && found[0].message.contains("rain needs a counter"), "\(found)")
        #expect(errors(config(device: ", rain: {point: tips, mm_per_count: 0.2, counter_modulus: 6553.6}")).isEmpty)
        #expect(errors(config(device: ", air_quality: {indices: [ispu]}")).isEmpty)
    }

    @Test func airQualityNeedsPollutantPoints() throws {
        let noPollutants = """
            id: th-only
            manufacturer: T
            model: M
            source: test
            points:
              - {name: temperature, quantity: temperature, table: input, address: 1, type: i16, unit: Cel}
            """
        let lib = ProfileLibrary(profiles: [try ProfileParser.parse(noPollutants, file: "th-only.yaml").get()])
        let text = config(device: ", air_quality: {indices: [ispu]}").replacingOccurrences(
            of: "test-th", with: "th-only")
        guard case .failure(let e) = ConfigParser.parse(text, file: "gw.yaml", library: lib, environment: { _ in nil })
        else {
            Issue.record("accepted air_quality without pollutant points")
            return
        }
        #expect(e.diagnostics.count == 1 && e.diagnostics[0].message.contains("pollutant"))
    }

    @Test func aJournalFolderThatIsMissingOrAFileIsNamed() {
        var found = errors(config().replacingOccurrences(of: "/tmp/j.sqlite", with: "/nonexistent-pantau/j.sqlite"))
        #expect(
            found.count == 1 && found[0].message == "the journal folder '/nonexistent-pantau' does not exist",
            "\(found)")
        found = errors(config().replacingOccurrences(of: "/tmp/j.sqlite", with: "/etc/hostname/j.sqlite"))
        #expect(found.count == 1 && found[0].message.contains("is not a folder"), "\(found)")
    }
}

@Suite struct IdentifierBoundTests {
    @Test func namesAtTheBoundPassAndOneMoreIsRefused() throws {
        let site64 = String(repeating: "s", count: 64)
        let id32 = String(repeating: "g", count: 32)
        let longest = config().replacingOccurrences(of: "{site: s, id: g}", with: "{site: \(site64), id: \(id32)}")
        let accepted = try parse(longest).get()
        #expect(accepted.mqtt.clientId.utf8.count <= IdentifierLimits.clientId, "the default client id fits")
        let found = errors(
            config().replacingOccurrences(of: "{site: s, id: g}", with: "{site: \(site64)s, id: \(id32)g}"))
        #expect(found.count == 2 && found.allSatisfy { $0.message.contains("more than") }, "\(found)")
        #expect(found.map(\.location.line) == [1, 1])
    }

    @Test func clientIdAndTopicPrefixAreBounded() {
        let ok = config().replacingOccurrences(
            of: "mqtt: {brokers: [127.0.0.1]}",
            with: "mqtt: {brokers: [127.0.0.1], client_id: \(String(repeating: "c", count: 128))}")
        #expect(errors(ok).isEmpty)
        for (value, words) in [
            ("client_id: \(String(repeating: "c", count: 129))", "129 bytes"), ("client_id: \"a\\0b\"", "control"),
            ("topic_prefix: \"a\\nb\"", "control"), ("topic_prefix: a//b", "empty level"),
            ("topic_prefix: \(String(repeating: "p", count: 257))", "257 bytes"),
        ] {
            let text = config().replacingOccurrences(
                of: "mqtt: {brokers: [127.0.0.1]}", with: "mqtt: {brokers: [127.0.0.1], \(value)}")
            let found = errors(text)
            #expect(found.count == 1 && found[0].message.contains(words), "\(value): \(found)")
            #expect(found.first?.location.line == 5)
        }
    }
}

@Suite struct HostileProfileTests {
    func profile(_ points: String) -> [Diagnostic] {
        let text = """
            id: p
            manufacturer: T
            model: M
            source: test
            points:
            \(points)
            """
        switch ProfileParser.parse(text, file: "p.yaml") {
        case .success: return []
        case .failure(let e): return e.diagnostics
        }
    }

    @Test func aBitNumberOnACoilOrDiscreteInputIsRefused() {
        for table in ["coil", "discrete"] {
            let found = profile("  - {name: a, quantity: status, table: \(table), address: 0, type: bit, bit: 3}")
            #expect(found.count == 1 && found[0].message.contains("'bit' does not apply"), "\(found)")
            #expect(found.first?.location.line == 6 && found.first?.location.column == (table == "coil" ? 74 : 78))
        }
        #expect(profile("  - {name: a, quantity: status, table: holding, address: 0, type: bit, bit: 3}").isEmpty)
    }

    @Test func aDuplicateNameIsReportedWhenTheFirstPointHasAnotherError() {
        let found = profile(
            """
              - {name: level, quantity: water_level, table: input, address: 0, type: u17, unit: cm}
              - {name: level, quantity: water_level, table: input, address: 1, type: u16, unit: cm}
            """)
        #expect(found.count == 2, "\(found)")
        #expect(found.contains { $0.message.contains("found 'u17'") })
        #expect(found.contains { $0.message.contains("duplicate point name 'level'") && $0.location.line == 7 })
    }

    @Test func identifierIsAQuantityForStringsOnly() {
        #expect(
            profile("  - {name: serial, quantity: identifier, table: holding, address: 0, type: string, length: 8}")
                .isEmpty)
        let found = profile("  - {name: serial, quantity: identifier, table: holding, address: 0, type: u32}")
        #expect(found.count == 1 && found[0].message.contains("type string"), "\(found)")
    }
}

/// Inputs the fuzz targets (fuzz/) found crashing, kept as regression tests.
@Suite struct FuzzFindingTests {
    /// FuzzConfig, first campaign: a broker written as ":" or "" indexed an empty split (Index out of range).
    @Test(arguments: ["\":\"", "\"\"", "\":1883\"", "\"host:\""])
    func aBrokerWithNoHostIsAnErrorNotACrash(_ broker: String) {
        let text = config().replacingOccurrences(
            of: "mqtt: {brokers: [127.0.0.1]}", with: "mqtt: {brokers: [\(broker)]}")
        let found = errors(text)
        #expect(found.contains { $0.message.contains("a broker must be host or host:port") }, "\(found)")
    }
}
