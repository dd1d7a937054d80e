import Foundation
import PantauCore
import Testing

private func config(commands: String, devices: String = "") -> Result<GatewayConfig, ConfigurationError> {
    let profile = try! ProfileParser.parse(
        """
        id: test-pump
        manufacturer: Test
        model: Pump
        source: "unit test"
        points:
          - {name: setpoint, quantity: water_level, table: holding, address: 10, type: u16, range: [0, 5],
             writable: true}
        """, file: "p.yaml"
    ).get()
    let text = """
        gateway: {site: s, id: g}
        buses: [{name: net, type: tcp, host: 127.0.0.1}]
        devices:
          - {name: pump-1, bus: net, unit: 1, profile: test-pump\(devices)}
        mqtt: {brokers: [127.0.0.1]}
        \(commands)
        """
    return ConfigParser.parse(text, file: "/tmp/gw.yaml", library: ProfileLibrary(profiles: [profile]))
}

private func keyFile(mode: Int, bytes: Int = 32) throws -> String {
    let path = NSTemporaryDirectory() + "pantau-key-\(UUID().uuidString)"
    try Data(repeating: 0x41, count: bytes).write(to: URL(fileURLWithPath: path))
    chmod(path, mode_t(mode))
    return path
}

@Suite struct CommandsConfigTests {
    @Test func commandsAreDisabledWithoutTheSection() throws {
        let c = try config(commands: "").get()
        #expect(c.commands == .disabled)
        #expect(c.devices[0].writes == false)
    }

    @Test func aPrivateKeyFileIsLoaded() throws {
        let path = try keyFile(mode: 0o600)
        let c = try config(
            commands: "commands: {enabled: true, key_file: \(path), window_seconds: 10}",
            devices: ", writes: allow"
        ).get()
        #expect(c.commands.enabled && c.commands.windowSeconds == 10)
        #expect(c.commands.key?.bytes.count == 32)
        #expect(c.devices[0].writes)
    }

    @Test(arguments: [0o640, 0o604, 0o644])
    func aKeyFileOthersCanReadIsRefused(mode: Int) throws {
        let path = try keyFile(mode: mode)
        guard case .failure(let error) = config(commands: "commands: {enabled: true, key_file: \(path)}") else {
            Issue.record("accepted a key file of mode \(String(mode, radix: 8))")
            return
        }
        #expect(error.description.contains("/tmp/gw.yaml:6:"))
        #expect(error.description.contains("readable only by the service user"))
    }

    @Test func aShortKeyIsRefused() throws {
        let path = try keyFile(mode: 0o600, bytes: 16)
        let result = config(commands: "commands: {enabled: true, key_file: \(path)}")
        #expect(result.failure?.description.contains("at least 32") == true)
    }

    @Test func writesIsAllowOrDeny() throws {
        #expect(config(commands: "", devices: ", writes: maybe").failure?.description.contains("writes") == true)
        #expect(try config(commands: "", devices: ", writes: deny").get().devices[0].writes == false)
    }
}
