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

private func config(_ sparkplug: String) -> Result<GatewayConfig, ConfigurationError> {
    let text = """
        gateway: {site: tangerang, id: gw-01}
        buses: [{name: net, type: tcp, host: 10.0.0.5}]
        devices: [{name: th-1, bus: net, unit: 1, profile: test-th, poll_interval: 5s}]
        mqtt: {brokers: [broker.example], format: sparkplug}
        journal: {path: /tmp/j.sqlite}
        \(sparkplug)
        """
    return ConfigParser.parse(text, file: "gw.yaml", library: library, environment: { _ in nil })
}

@Suite("sparkplug: section")
struct SparkplugConfigTests {
    @Test("defaults: the site, the gateway id, no primary host")
    func defaults() throws {
        let sp = try config("").get().sparkplug
        #expect(sp == SparkplugConfig(groupId: "tangerang", edgeNodeId: "gw-01", primaryHostId: nil))
    }

    @Test("primary_host_id is read with the identities")
    func primaryHost() throws {
        let sp = try config("sparkplug: {group_id: g, edge_node_id: e, primary_host_id: scada-1}").get().sparkplug
        #expect(sp == SparkplugConfig(groupId: "g", edgeNodeId: "e", primaryHostId: "scada-1"))
    }

    @Test("a primary_host_id that cannot be a topic level is refused at its position")
    func badHost() {
        guard case .failure(let error) = config("sparkplug: {primary_host_id: \"a/#\"}") else {
            Issue.record("accepted a host id with '/' and '#'")
            return
        }
        #expect("\(error)".contains("gw.yaml:6:") && "\(error)".contains("primary_host_id"))
    }
}
