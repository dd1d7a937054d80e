import PantauCore
import PantauModbus
import Synchronization
import Testing

@testable import PantauGateway

/// A monotonic clock that moves 2 ms at every reading, so a probe (two readings) takes exactly 2 ms.
private final class SteppingClock: GatewayClock {
    private let nanos = Atomic<UInt64>(0)
    func now() -> UnixMillis { 1_700_000_000_000 }
    func monotonicNanos() -> UInt64 { nanos.add(2_000_000, ordering: .relaxed).newValue }
}

/// A Modbus master whose units answer from a register image, with one exception code, or not at all.
private final class ScriptedTransport: ModbusTransport {
    enum Unit {
        case registers(RegisterImage)
        case exception(ModbusError.Code)
    }

    var units: [Int: Unit]
    /// Requests that fail with a timeout even on a unit that answers.
    var failing: Set<ReadRequest> = []
    private(set) var unit = 0
    private(set) var reads: [ReadRequest] = []
    private(set) var flushes = 0
    private(set) var closed = false

    init(_ units: [Int: Unit]) { self.units = units }

    func connect() throws(ModbusError) {}
    func close() { closed = true }
    func setUnit(_ unit: Int) throws(ModbusError) { self.unit = unit }
    func setResponseTimeout(ms: Int) {}
    func flush() { flushes += 1 }

    func read(_ request: ReadRequest) throws(ModbusError) -> [UInt16] {
        reads.append(request)
        let place = (bus: "test", unit: unit, table: request.table, address: request.address)
        guard let behaviour = units[unit], !failing.contains(request) else {
            throw ModbusError(
                code: .timeout, bus: place.bus, unit: place.unit, table: place.table, address: place.address)
        }
        switch behaviour {
        case .exception(let code):
            throw ModbusError(code: code, bus: place.bus, unit: place.unit, table: place.table, address: place.address)
        case .registers(let image):
            return (request.address..<request.endAddress).map { image[request.table, $0] ?? 0 }
        }
    }
}

private func profile(_ id: String, identification: [IdentificationRule], points: [PointSpec] = []) -> DeviceProfile {
    DeviceProfile(
        id: id, identification: identification,
        points: points.isEmpty ? [PointSpec(name: "p", quantity: "q", table: .holding, address: 0, type: .u16)] : points
    )
}

@Suite("Diagnostics: argument parsing")
struct DiagnosticsArgumentTests {
    @Test(
        "unit lists and ranges",
        arguments: [
            ("1-247", Array(1...247)),
            ("5", [5]),
            ("1,3,10-12", [1, 3, 10, 11, 12]),
            ("3,1,2-3", [1, 2, 3]),
            (" 7 , 9", [7, 9]),
        ])
    func unitRanges(text: String, expected: [Int]) throws {
        #expect(try ScanArguments.units(text) == expected)
    }

    @Test("unit lists a scan cannot use", arguments: ["", "0", "248", "1-300", "9-3", "a", "1-", "1,,2", "-3"])
    func badUnitRanges(text: String) {
        #expect(throws: DiagnosticsUsageError.self) { try ScanArguments.units(text) }
    }

    @Test("TCP allows the gateway's own unit ids 0 and 255")
    func tcpUnitRange() throws {
        #expect(try ScanArguments.units("0,255", allowed: 0...255) == [0, 255])
    }

    @Test("baud and parity lists")
    func lineLists() throws {
        #expect(try ScanArguments.bauds("9600,19200,9600") == [9600, 19200])
        #expect(throws: DiagnosticsUsageError.self) { try ScanArguments.bauds("9601") }
        #expect(try ScanArguments.parities("none,even") == [.none, .even])
        #expect(try ScanArguments.parities("all") == [.none, .even, .odd])
        #expect(throws: DiagnosticsUsageError.self) { try ScanArguments.parities("mark") }
    }

    @Test(
        "host:port",
        arguments: [
            ("127.0.0.1:5020", "127.0.0.1", 5020), ("plc.local", "plc.local", 502), ("[::1]:1502", "::1", 1502),
        ])
    func tcpEndpoints(text: String, host: String, port: Int) throws {
        let parsed = try #require(ModbusLink.parseTCP(text))
        #expect(parsed.host == host && parsed.port == port)
    }

    @Test("host:port refused", arguments: [":502", "host:0", "host:70000", "host:x", "[::1", "[::1]x"])
    func badTCPEndpoints(text: String) {
        #expect(ModbusLink.parseTCP(text) == nil)
    }

    @Test("register values: decimal, negative as two's complement, hex")
    func registerValues() throws {
        #expect(
            try RawArguments.registers(["0", "65535", "-1", "-32768", "0x04D2", "0XFFFF"])
                == [0, 65535, 0xFFFF, 0x8000, 0x04D2, 0xFFFF])
        for bad in ["65536", "-32769", "0x10000", "twelve", ""] {
            #expect(throws: DiagnosticsUsageError.self) { try RawArguments.registers([bad]) }
        }
    }

    @Test("coil values")
    func coilValues() throws {
        #expect(
            try RawArguments.coils(["1", "0", "on", "OFF", "true", "false"]) == [true, false, true, false, true, false])
        #expect(throws: DiagnosticsUsageError.self) { try RawArguments.coils(["2"]) }
    }

    @Test(
        "0-based and 1-based addresses",
        arguments: [
            (0, false, 0), (65535, false, 65535), (1, true, 0), (40, true, 39),
        ])
    func addresses(given: Int, oneBased: Bool, expected: Int) throws {
        #expect(try RawArguments.protocolAddress(given, oneBased: oneBased) == expected)
    }

    @Test("addresses outside the protocol range", arguments: [(-1, false), (65536, false), (0, true)])
    func badAddresses(given: Int, oneBased: Bool) {
        #expect(throws: DiagnosticsUsageError.self) { try RawArguments.protocolAddress(given, oneBased: oneBased) }
    }
}

@Suite("Diagnostics: formatting")
struct DiagnosticsFormattingTests {
    @Test(
        "time left",
        arguments: [
            (UInt64(0), "0:00"), (1, "0:01"), (999_999_999, "0:01"), (1_000_000_000, "0:01"), (59_000_000_000, "0:59"),
            (61_500_000_000, "1:02"), (3_599_000_000_000, "59:59"), (3_600_000_000_000, "1:00:00"),
            (3_725_000_000_000, "1:02:05"),
        ])
    func durations(nanos: UInt64, expected: String) {
        #expect(ScanProgress.duration(nanos: nanos) == expected)
    }

    @Test("the estimate extrapolates the average probe")
    func remaining() {
        #expect(ScanProgress.remainingNanos(done: 0, total: 10, elapsedNanos: 5) == nil)
        #expect(ScanProgress.remainingNanos(done: 2, total: 10, elapsedNanos: 200_000_000) == 800_000_000)
        #expect(ScanProgress.remainingNanos(done: 10, total: 10, elapsedNanos: 1) == 0)
    }

    @Test(
        "progress lines",
        arguments: [
            (0, 247, 0, UInt64(0), "[------------------------]   0/247 0%  0 found  --:-- left"),
            (61, 247, 2, 6_100_000_000, "[#####-------------------]  61/247 24%  2 found  0:19 left"),
            (247, 247, 3, 24_700_000_000, "[########################] 247/247 100%  3 found  0:00 left"),
        ])
    func progressLines(done: Int, total: Int, found: Int, elapsed: UInt64, expected: String) {
        #expect(ScanProgress.line(done: done, total: total, found: found, elapsedNanos: elapsed) == expected)
    }

    @Test(
        "PLC notation next to the protocol address",
        arguments: [
            (RegisterTable.holding, 0, "40001"), (.holding, 10, "40011"), (.input, 0, "30001"), (.coil, 0, "00001"),
            (.coil, 99, "00100"), (.discrete, 4, "10005"), (.holding, 9998, "49999"), (.holding, 9999, "410000"),
        ])
    func plcNumbers(table: RegisterTable, address: Int, expected: String) {
        #expect(PLCAddress.text(table: table, address: address) == expected)
    }

    @Test("the convention is spelled out")
    func convention() {
        #expect(
            PLCAddress.convention(table: .holding, address: 10)
                == "0-based protocol address 10 = holding register 40011 in PLC notation (4xxxx = address + 40001)")
    }

    @Test("a count with its noun, plural unless one")
    func counts() {
        #expect(DiagnosticsFormat.counted(1, "device") == "1 device")
        #expect(DiagnosticsFormat.counted(0, "unit id") == "0 unit ids")
        #expect(DiagnosticsFormat.counted(3, "holding register") == "3 holding registers")
        #expect(DiagnosticsFormat.counted(1, "bus", plural: "buses") == "1 bus")
        #expect(DiagnosticsFormat.counted(2, "bus", plural: "buses") == "2 buses")
    }

    @Test("values as a technician reads them")
    func values() {
        #expect(DiagnosticsFormat.value(.number(1234)) == "1234")
        #expect(DiagnosticsFormat.value(.number(-12.5)) == "-12.5")
        #expect(DiagnosticsFormat.value(.flag(true)) == "true")
        #expect(DiagnosticsFormat.value(.text("PANTAU")) == "\"PANTAU\"")
        #expect(DiagnosticsFormat.value(nil) == "-")
        #expect(DiagnosticsFormat.hex(0x4D2) == "0x04D2")
        #expect(DiagnosticsFormat.milliseconds(12.34) == "12.3 ms")
    }

    @Test("a register pair as every 32-bit type in every byte order")
    func interpretationOfAPair() throws {
        // 1013.25 as an IEEE float is 0x447D5000: big-endian words 0x447D 0x5000.
        let table = try #require(InterpretationTable(words: [0x447D, 0x5000]))
        #expect(table.orders.map(\.description) == ["ABCD", "CDAB", "BADC", "DCBA"])
        #expect(table.rows.map(\.type) == [.u32, .i32, .f32])
        #expect(table.rows[2].values[0] == .number(1013.25))
        #expect(table.rows[0].values[0] == .number(0x447D_5000))
        #expect(table.rows[0].values[1] == .number(0x5000_447D))
        let lines = table.lines()
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("type") && lines[0].hasSuffix("DCBA"))
        #expect(lines[3].contains("1013.25"))
        #expect(InterpretationTable(words: [1, 2, 3]) == nil)
    }
}

@Suite("Diagnostics: bus scanner")
struct BusScannerTests {
    @Test("data or an exception proves a unit; silence and a gateway's no-route do not")
    func presence() {
        let transport = ScriptedTransport([
            2: .registers(RegisterImage()), 5: .exception(.illegalAddress), 7: .exception(.gatewayPath),
            9: .exception(.busy),
        ])
        let scanner = BusScanner(units: Array(1...10), settings: [nil], clock: SteppingClock())
        var events: [String] = []
        let outcome = scanner.run(
            open: { _ in transport }, shouldStop: { false },
            report: { event in
                if case .found(let hit) = event { events.append("found \(hit.unit)") }
                if case .progress(let done, let total, let found) = event { events.append("\(done)/\(total) \(found)") }
            })
        #expect(outcome.hits.map(\.unit) == [2, 5, 9])
        #expect(outcome.hits.map(\.exception) == [nil, .illegalAddress, .busy])
        #expect(outcome.hits.allSatisfy { $0.responseMs == 2 })
        #expect(outcome.probed == 10 && !outcome.interrupted)
        #expect(events.prefix(4) == ["1/10 0", "found 2", "2/10 1", "3/10 1"])
        #expect(events.last == "10/10 3")
        // Every silent or garbled probe is followed by a flush, so a late reply is not taken for the next unit.
        #expect(transport.flushes == 7)
        #expect(transport.closed)
    }

    @Test("every line setting is tried, each with its own connection")
    func settings() {
        let slow = SerialSettings(baud: 9600, parity: .none)
        let fast = SerialSettings(baud: 19200, parity: .even)
        var opened: [SerialSettings?] = []
        let scanner = BusScanner(units: [1, 2], settings: [slow, fast], clock: SteppingClock())
        let outcome = scanner.run(
            open: { serial in
                opened.append(serial)
                return ScriptedTransport(serial == fast ? [2: .registers(RegisterImage())] : [:])
            },
            shouldStop: { false }, report: { _ in })
        #expect(opened == [slow, fast])
        #expect(outcome.hits.map(\.unit) == [2])
        #expect(outcome.hits.first?.serial == fast)
    }

    @Test("a port that does not open is reported and its probes counted")
    func openFailure() {
        let scanner = BusScanner(units: [1, 2, 3], settings: [SerialSettings()], clock: SteppingClock())
        var failures = 0
        let outcome = scanner.run(
            open: { _ throws(ModbusError) in throw ModbusError(code: .connection, bus: "/dev/ttyUSB9") },
            shouldStop: { false },
            report: { if case .openFailed = $0 { failures += 1 } })
        #expect(failures == 1)
        #expect(outcome.openFailures.map(\.code) == [.connection])
        #expect(outcome.probed == 3 && outcome.hits.isEmpty)
    }

    @Test("an interrupt stops before the next probe and keeps what was found")
    func interrupt() {
        let transport = ScriptedTransport([1: .registers(RegisterImage()), 3: .registers(RegisterImage())])
        var probes = 0
        let scanner = BusScanner(units: Array(1...10), settings: [nil], clock: SteppingClock())
        let outcome = scanner.run(
            open: { _ in transport }, shouldStop: { probes >= 4 },
            report: { event in
                if case .progress(let done, _, _) = event { probes = done }
            })
        #expect(outcome.interrupted)
        #expect(outcome.probed == 4)
        #expect(outcome.hits.map(\.unit) == [1, 3])
        #expect(transport.reads.count == 4)
    }

    @Test("the model is named where a profile's identification registers match")
    func identification() {
        var image = RegisterImage()
        image.store([0x5041, 0x4E54], table: .holding, at: 20)
        image.store([1], table: .input, at: 7)
        let profiles = [
            profile(
                "matching",
                identification: [
                    IdentificationRule(table: .holding, address: 20, expect: [0x5041, 0x4E54]),
                    IdentificationRule(table: .input, address: 7, expect: [1]),
                ]),
            profile(
                "half-matching",
                identification: [
                    IdentificationRule(table: .holding, address: 20, expect: [0x5041, 0x4E54]),
                    IdentificationRule(table: .input, address: 7, expect: [2]),
                ]),
            profile("unreadable", identification: [IdentificationRule(table: .holding, address: 99, expect: [0])]),
            profile("no-rules", identification: []),
        ]
        let transport = ScriptedTransport([4: .registers(image)])
        transport.failing = [ReadRequest(table: .holding, address: 99, count: 1)]
        let scanner = BusScanner(units: [4], settings: [nil], profiles: profiles, clock: SteppingClock())
        let outcome = scanner.run(open: { _ in transport }, shouldStop: { false }, report: { _ in })
        #expect(outcome.hits.first?.models == ["matching"])
        // The probe, then each of the three distinct identification reads once although two profiles share two.
        #expect(
            transport.reads.map(\.description) == [
                "FC3 holding 0+1", "FC3 holding 20+2", "FC4 input 7+1", "FC3 holding 99+1",
            ])
    }
}

@Suite("Diagnostics: device reader")
struct DeviceReaderTests {
    @Test("values, raw words and the request of each point; a failed request leaves its points without value")
    func poll() {
        var image = RegisterImage()
        image.store([0x04D2, 0xFF85], table: .holding, at: 0)
        let device = DeviceProfile(
            id: "t",
            points: [
                PointSpec(name: "count", quantity: "q", table: .holding, address: 0, type: .u16, unit: "count"),
                PointSpec(
                    name: "temp", quantity: "q", table: .holding, address: 1, type: .i16, scale: 0.1, unit: "Cel"),
                PointSpec(name: "lux", quantity: "q", table: .input, address: 3, type: .u16, unit: "lx"),
            ])
        let transport = ScriptedTransport([1: .registers(image)])
        transport.failing = [ReadRequest(table: .input, address: 3, count: 1)]
        let snapshot = DeviceReader.poll(
            transport, profile: device, unit: 1, timing: ProfileTiming(), device: "d", clock: SteppingClock())
        #expect(snapshot.requests.map(\.request.description) == ["FC3 holding 0+2", "FC4 input 3+1"])
        #expect(snapshot.requests.map { $0.error?.code } == [nil, .timeout])
        #expect(snapshot.requests.allSatisfy { $0.responseMs == 2 })
        #expect(snapshot.points.map(\.reading.value) == [.number(1234), .number(-12.3), nil])
        #expect(snapshot.points.map(\.reading.quality) == [.good, .good, .deviceError])
        #expect(snapshot.points.map(\.raw) == [[0x04D2], [0xFF85], []])
        #expect(snapshot.points.map(\.request) == [0, 0, 1])
        #expect(snapshot.points[2].failure?.code == .missingRegisters)
        #expect(!snapshot.unreachable)
        #expect(transport.flushes == 1)
    }

    @Test("a device that answers nothing is unreachable")
    func unreachable() {
        let device = profile("t", identification: [])
        let snapshot = DeviceReader.poll(
            ScriptedTransport([:]), profile: device, unit: 3, timing: ProfileTiming(), device: "d",
            clock: SteppingClock())
        #expect(snapshot.unreachable)
        #expect(snapshot.requests.first?.error?.unit == 3)
    }
}
