import Foundation
import PantauCore
import PantauPlatform
import Testing

@testable import PantauModbus

/// Raw registers the simulated devices hold, so every read has one exact expected answer.
let fixedImage = RegisterImage([
    .holding: Dictionary(uniqueKeysWithValues: (0..<10).map { ($0, UInt16(0x1000 + $0)) }),
    .input: [100: 0xFFFF, 101: 0x8000, 102: 0, 103: 0x0530],
    .coil: [0: 1, 1: 0, 2: 1, 3: 1],
    .discrete: [20: 0, 21: 1],
])

/// A simulator on a free loopback port with unit 1 (fixed registers), unit 2 (silent), and a master connected.
final class TCPRig {
    let simulator: ModbusSimulator
    let port: Int

    init() throws {
        simulator = ModbusSimulator(
            fixed: [(unit: 1, image: fixedImage), (unit: 2, image: fixedImage)], clock: SystemClock(),
            logger: quietLogger)
        simulator.setSilent(unit: 2, true)
        port = try simulator.serveTCP(host: "127.0.0.1", port: 0)
    }

    func connection(unit: Int) throws -> ModbusConnection {
        let connection = try ModbusConnection.tcp(host: "127.0.0.1", port: port, bus: "tcp-test")
        try connection.connect()
        try connection.setUnit(unit)
        connection.setResponseTimeout(ms: 300)
        return connection
    }

    deinit { simulator.stop() }
}

@Suite(.serialized) struct ModbusConnectionTCPTests {
    @Test func readsReturnExactlyTheFixedRegisters() throws {
        let rig = try TCPRig()
        let connection = try rig.connection(unit: 1)
        defer { connection.close() }

        #expect(try connection.readRegisters(table: .holding, address: 0, count: 10) == (0..<10).map { 0x1000 + $0 })
        #expect(try connection.readRegisters(table: .input, address: 100, count: 4) == [0xFFFF, 0x8000, 0, 0x0530])
        #expect(try connection.readBits(table: .coil, address: 0, count: 4) == [true, false, true, true])
        #expect(try connection.readBits(table: .discrete, address: 20, count: 2) == [false, true])
        #expect(try connection.read(ReadRequest(table: .coil, address: 1, count: 3)) == [0, 1, 1])
        #expect(try connection.read(ReadRequest(table: .holding, address: 3, count: 2)) == [0x1003, 0x1004])
    }

    @Test func hostNamesAreResolved() throws {
        let rig = try TCPRig()
        let connection = try ModbusConnection.tcp(host: "localhost", port: rig.port)
        try connection.connect()
        defer { connection.close() }
        try connection.setUnit(1)
        #expect(try connection.readRegisters(table: .holding, address: 9, count: 1) == [0x1009])
    }

    @Test func writesAreReadBack() throws {
        let rig = try TCPRig()
        let connection = try rig.connection(unit: 1)
        defer { connection.close() }

        try connection.writeRegister(address: 2, value: 0xBEEF)
        try connection.writeRegisters(address: 5, values: [7, 8])
        try connection.writeCoil(address: 1, on: true)
        try connection.writeCoils(address: 2, values: [false, false])

        #expect(try connection.readRegisters(table: .holding, address: 2, count: 5) == [0xBEEF, 0x1003, 0x1004, 7, 8])
        #expect(try connection.readBits(table: .coil, address: 0, count: 4) == [true, true, false, false])
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        let unit: Int
        let table: RegisterTable
        let address: Int
        let count: Int
        let code: ModbusError.Code
        let errorClass: ModbusError.Class
        var testDescription: String { "unit \(unit) \(table) \(address)+\(count) -> \(code)" }
    }

    @Test(arguments: [
        ErrorCase(unit: 1, table: .holding, address: 500, count: 2, code: .illegalAddress, errorClass: .config),
        ErrorCase(unit: 1, table: .holding, address: 8, count: 4, code: .illegalAddress, errorClass: .config),
        ErrorCase(unit: 1, table: .input, address: 0, count: 1, code: .illegalAddress, errorClass: .config),
        ErrorCase(unit: 9, table: .holding, address: 0, count: 1, code: .gatewayPath, errorClass: .link),
        ErrorCase(unit: 2, table: .holding, address: 0, count: 1, code: .timeout, errorClass: .link),
    ])
    func failuresCarryTheirCodeClassAndPlace(_ c: ErrorCase) throws {
        let rig = try TCPRig()
        let connection = try rig.connection(unit: c.unit)
        defer { connection.close() }

        let error = #expect(throws: ModbusError.self) {
            try connection.readRegisters(table: c.table, address: c.address, count: c.count)
        }
        #expect(error?.code == c.code)
        #expect(error?.class == c.errorClass)
        #expect(error?.unit == c.unit)
        #expect(error?.table == c.table)
        #expect(error?.address == c.address)
        #expect(
            error?.description.hasPrefix("bus tcp-test unit \(c.unit) \(c.table.rawValue) \(c.address)+\(c.count)")
                == true)
        // The connection still serves the next request after a failure.
        try connection.setUnit(1)
        if c.code == .timeout { connection.flush() }
        #expect(try connection.readRegisters(table: .holding, address: 0, count: 1) == [0x1000])
    }

    @Test func refusedConnectionIsAConnectionError() throws {
        // A port that was free a moment ago: nothing listens there.
        let probe = try TCPRig()
        let port = probe.port
        probe.simulator.stop()
        let connection = try ModbusConnection.tcp(host: "127.0.0.1", port: port)
        let error = #expect(throws: ModbusError.self) { try connection.connect() }
        #expect(error?.class == .connection)
    }

    @Test(arguments: [12345, 14400, 0])
    func unknownBaudIsRejectedBeforeLibmodbusFallsBackTo9600(baud: Int) {
        let error = #expect(throws: ModbusError.self) {
            try ModbusConnection.rtu(device: "/dev/null", serial: SerialSettings(baud: baud), rs485: false)
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("9600") == true)
    }

    @Test func invalidRequestsAreRejectedWithoutTouchingTheBus() throws {
        let connection = try ModbusConnection.tcp(host: "127.0.0.1", port: 1502)
        #expect(throws: ModbusError.self) { try connection.readRegisters(table: .holding, address: 0, count: 126) }
        #expect(throws: ModbusError.self) { try connection.readRegisters(table: .coil, address: 0, count: 1) }
        #expect(throws: ModbusError.self) { try connection.readBits(table: .input, address: 0, count: 1) }
        #expect(throws: ModbusError.self) { try connection.setUnit(300) }
    }

    @Test func pollerReadsTheSimulatorOverLibmodbus() throws {
        let rig = try TCPRig()
        let recorder = PollRecorder()
        let bus = BusConfig(name: "tcp-1", transport: .tcp(host: "127.0.0.1", port: rig.port))
        let points: [(String, RegisterTable, Int)] = [("a", .holding, 0), ("b", .holding, 9), ("c", .input, 103)]
        let devices = [device("aq", unit: 1, every: 1, points: points), device("dead", unit: 2, every: 1)]
        let poller = BusPoller(
            bus: bus, devices: devices, clock: SystemClock(), logger: quietLogger, codec: testCodec,
            onPoll: { recorder.record($0) }, onAvailability: { recorder.record($0, $1, $2) })
        poller.start()
        let clock = SystemClock()
        let deadline = clock.monotonicNanos() + 20_000_000_000
        while (recorder.polls(of: "aq").isEmpty || recorder.polls(of: "dead").isEmpty)
            && clock.monotonicNanos() < deadline
        {
            sleepMicros(20_000)
        }
        poller.stop()

        let values = recorder.polls(of: "aq").first?.readings.map(\.value)
        #expect(values == [.number(0x1000), .number(0x1009), .number(0x0530)])
        #expect(recorder.polls(of: "dead").first?.modbusError?.unit == 2)
        let stats = poller.snapshot()
        #expect(stats.timeouts >= 2)
        #expect(stats.transactions >= 4)
    }
}
