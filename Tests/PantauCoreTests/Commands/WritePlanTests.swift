import PantauCore
import Testing

private let profile = try! ProfileParser.parse(
    """
    id: test-pump
    manufacturer: Test
    model: Pump
    source: "unit test"
    points:
      - {name: level, quantity: water_level, table: input, address: 0, type: u16, scale: 0.01, unit: m}
      - {name: setpoint, quantity: water_level, table: holding, address: 10, type: u16, scale: 0.01, unit: m,
         range: [0, 5], writable: true}
      - {name: offset, quantity: water_level, table: holding, address: 11, type: i16, unit: m,
         range: [-100, 100], writable: true}
      - {name: limit, quantity: water_level, table: holding, address: 12, type: u16, unit: m, range: [0, 10]}
      - {name: relay, quantity: status, table: coil, address: 3, type: bit, writable: true}
    """, file: "test-pump.yaml"
).get()

private func devices(writes: Bool = true) -> [DeviceConfig] {
    var d = DeviceConfig(name: "pump-1", bus: "b", unitId: 1, profile: profile, pollInterval: .seconds(10))
    d.writes = writes
    return [d]
}

private func plan(_ point: String, _ value: String, device: String = "pump-1", writes: Bool = true)
    -> Result<WritePlan, CommandRefusal>
{
    WritePlan.make(device: device, point: point, value: value, devices: devices(writes: writes))
}

@Suite struct WritePlanTests {
    @Test func aValueInRangeBecomesItsRegisters() throws {
        #expect(try plan("setpoint", "2.5").get().words == [250])
        #expect(try plan("offset", "-3").get().words == [0xFFFD])
        #expect(try plan("relay", "true").get().words == [1])
        #expect(try plan("setpoint", "5").get().words == [500])
        #expect(try plan("setpoint", "0").get().words == [0])
    }

    @Test(arguments: [
        ("setpoint", "5.01", CommandStatus.outOfRange),
        ("setpoint", "-0.01", .outOfRange),
        ("setpoint", "1.234", .outOfRange),
        ("setpoint", "nan", .outOfRange),
        ("offset", "1.5", .outOfRange),
        ("relay", "2", .outOfRange),
        ("limit", "1", .notWritable),
        ("level", "1", .notWritable),
        ("missing", "1", .notWritable),
    ])
    func refusals(point: String, value: String, status: CommandStatus) {
        #expect(plan(point, value).failure?.status == status)
    }

    @Test func deviceChecksComeFirst() {
        #expect(plan("setpoint", "1", device: "pump-9").failure?.status == .deviceUnknown)
        #expect(plan("setpoint", "1", writes: false).failure?.status == .writesNotAllowed)
    }

    @Test func theProfileParserMarksWritablePoints() {
        #expect(profile.point(named: "setpoint")?.writable == true)
        #expect(profile.point(named: "limit")?.writable == false)
    }

    @Test(arguments: [
        "{name: x, quantity: water_level, table: input, address: 0, type: u16, range: [0, 1], writable: true}",
        "{name: x, quantity: water_level, table: holding, address: 0, type: u16, writable: true}",
        "{name: x, quantity: identifier, table: holding, address: 0, type: string, length: 2, writable: true}",
    ])
    func unwritablePointsAreConfigurationErrors(point: String) {
        let text = "id: t\nmanufacturer: T\nmodel: T\nsource: t\npoints:\n  - \(point)\n"
        guard case .failure(let error) = ProfileParser.parse(text, file: "t.yaml") else {
            Issue.record("accepted \(point)")
            return
        }
        #expect(error.description.contains("t.yaml:6:"))
    }
}
