import PantauCore
import PantauPlatform

/// SDI-12 sensors (v1.4) behind the `ModbusTransport` seam: the unit is the sensor's address (its ASCII code) and
/// one read runs one measurement, `aM!` (or `aMC!`, `aC!`, `aCC!`) then `aD0!`, `aD1!`, ... until the announced
/// number of values has arrived. Value i is shown as an f64 in input registers 4i...4i+3.
///
/// Each command is preceded by a break (≥ 12 ms spacing) and marking (≥ 8.33 ms), as §4.2 asks of a recorder
/// after more than 87 ms of marking. Every response is checked before its values are used: the address, the
/// `atttn` shape, the CRC for the C variants; a truncated or silent response is a timeout. An echo of the command
/// (one-wire adapters hear themselves) is skipped. Not thread safe: the bus thread owns it.
public final class SDI12Transport: ReadOnlyMaster {
    public let settings: SDI12Settings
    public let bus: String
    private let link: any ByteLink
    private var unit: Int?
    private var responseTimeoutMs = 1000
    public var breakMs = 13
    public var markingMs = 9
    /// Added to the announced measurement time before giving up on the service request or data.
    public var readyMarginMs = 1500
    /// Pauses the bus thread (injected so tests need not wait).
    public var pause: (_ micros: Int) -> Void = { sleepMicros($0) }
    /// Lines heard that were not what was asked for (echoes, stray service requests).
    public private(set) var ignoredLines = 0

    public init(settings: SDI12Settings, link: any ByteLink, bus: String) {
        self.settings = settings
        self.link = link
        self.bus = bus
    }

    public convenience init(settings: SDI12Settings, bus: String) {
        self.init(
            settings: settings, link: SerialPort(device: settings.device, serial: settings.serial, bus: bus),
            bus: bus)
    }

    public func connect() throws(ModbusError) { try link.open() }
    public func close() { link.close() }

    public func setUnit(_ unit: Int) throws(ModbusError) {
        guard SDI12Spec.isAddress(unit) else {
            throw ModbusError(
                code: .invalidArgument, message: "unit \(unit) is not an SDI-12 address (ASCII code of 0-9, A-Z, a-z)",
                bus: bus)
        }
        self.unit = unit
    }

    public func setResponseTimeout(ms: Int) { responseTimeoutMs = max(1, ms) }

    public func flush() { link.discardInput() }

    public func read(_ request: ReadRequest) throws(ModbusError) -> [UInt16] {
        guard let unit else { throw ModbusError(code: .invalidArgument, message: "no SDI-12 address set", bus: bus) }
        guard let spec = settings.sensors[unit] else {
            throw ModbusError(
                code: .invalidArgument, message: "no SDI-12 sensor profile for address '\(address(unit))'", bus: bus,
                unit: unit)
        }
        guard request.table == .input, request.address >= 0,
            request.address + request.count <= spec.values * SDI12Spec.registersPerValue
        else {
            throw ModbusError(
                code: .illegalAddress, message: "outside the \(spec.values) values of the measurement", bus: bus,
                unit: unit, table: request.table, address: request.address, count: request.count)
        }
        let values = try measure(spec, unit: unit, request)
        let registers = SDI12Spec.registers(values)
        return (request.address..<(request.address + request.count)).map { registers[$0] ?? 0 }
    }

    private func address(_ unit: Int) -> String { String(UnicodeScalar(UInt8(unit))) }

    /// One measurement: its values, all checked.
    func measure(_ spec: SDI12Spec, unit: Int, _ request: ReadRequest) throws(ModbusError) -> [Double] {
        func failure(_ code: ModbusError.Code, _ message: String) -> ModbusError {
            ModbusError(
                code: code, message: message, bus: bus, unit: unit, table: request.table, address: request.address,
                count: request.count)
        }
        let a = UInt8(unit)
        let start = address(unit) + spec.command.rawValue + "!"
        let reply = try command(start, timeoutMs: responseTimeoutMs, failure)
        guard let (seconds, count) = SDI12Spec.parseMeasureReply(reply, address: a, concurrent: spec.concurrent)
        else {
            let text = String(decoding: reply, as: UTF8.self)
            throw failure(.badData, "'\(start)' answered '\(text)', not a\(spec.concurrent ? "tttnn" : "tttn")")
        }
        guard count == spec.values else {
            throw failure(.badData, "the sensor announces \(count) values, the profile expects \(spec.values)")
        }
        if seconds > 0 {
            let waitMs = seconds * 1000 + readyMarginMs
            if spec.concurrent {
                pause(seconds * 1_000_000)
            } else {
                // The service request `a<CR><LF>` says the data is ready (or the announced time passes).
                let line = try? readLine(timeoutMs: waitMs, failure)
                if let line, line != [a] { ignoredLines += 1 }
            }
        }
        var values: [Double] = []
        for index in 0...9 where values.count < spec.values {
            let data = try command(address(unit) + "D\(index)!", timeoutMs: responseTimeoutMs, failure)
            switch SDI12Spec.parseData(data, address: a, crc: spec.crc) {
            case .success(let more):
                if more.isEmpty { break }
                values += more
            case .failure(let f):
                throw failure(f.fault == .crc ? .badCRC : .badData, f.message)
            }
            if data.count <= 1 + (spec.crc ? 3 : 0) { break }
        }
        guard values.count == spec.values else {
            throw failure(.badData, "the sensor gave \(values.count) of \(spec.values) values")
        }
        return values
    }

    /// Wakes the line, sends `text` and reads one response line (without CR LF), skipping an echo of the command.
    private func command(
        _ text: String, timeoutMs: Int, _ failure: (ModbusError.Code, String) -> ModbusError
    ) throws(ModbusError) -> [UInt8] {
        link.discardInput()
        pending = []
        try link.sendBreak(ms: breakMs)
        pause(markingMs * 1000)
        let bytes = Array(text.utf8)
        try link.write(bytes)
        var line = try readLine(timeoutMs: timeoutMs, failure, what: text)
        if line.starts(with: bytes) {
            ignoredLines += 1
            line.removeFirst(bytes.count)
            if line.isEmpty { line = try readLine(timeoutMs: timeoutMs, failure, what: text) }
        }
        return line
    }

    private var pending: [UInt8] = []

    private func readLine(
        timeoutMs: Int, _ failure: (ModbusError.Code, String) -> ModbusError, what: String = "the service request"
    ) throws(ModbusError) -> [UInt8] {
        let clock = SystemClock()
        let deadline = clock.monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        var buffer = pending
        pending = []
        while true {
            if let end = buffer.firstIndex(of: 0x0A), end > 0, buffer[end - 1] == 0x0D {
                pending = Array(buffer[(end + 1)...])
                return Array(buffer[..<(end - 1)])
            }
            let now = clock.monotonicNanos()
            guard now < deadline else {
                if buffer.isEmpty { throw failure(.timeout, "no answer to '\(what)' within \(timeoutMs) ms") }
                let text = String(decoding: buffer, as: UTF8.self)
                throw failure(.timeout, "truncated answer to '\(what)': '\(text)' without CR LF")
            }
            let left = Int((deadline - now) / 1_000_000) + 1
            buffer += try link.read(max: 128, timeoutMs: left).map { $0 & 0x7F }  // 7 data bits
        }
    }

    /// `?!`: the address of the sensor on the bus, nil when none answers (with several sensors the answers
    /// collide: use `acknowledges` per address instead).
    public func queryAddress() throws(ModbusError) -> UInt8? {
        guard let line = try answer("?!") else { return nil }
        guard line.count == 1, let a = line.first, SDI12Spec.isAddress(Int(a)) else {
            let text = String(decoding: line, as: UTF8.self)
            throw ModbusError(code: .badData, message: "'?!' answered '\(text)', not one address", bus: bus)
        }
        return a
    }

    /// `a!`: whether a sensor answers at the address `unit` (its ASCII code).
    public func acknowledges(unit: Int) throws(ModbusError) -> Bool {
        guard SDI12Spec.isAddress(unit) else { return false }
        return try answer(address(unit) + "!") == [UInt8(unit)]
    }

    /// `aI!`: the identification after the address (`14OTTHACHPLS...`), nil when the sensor is silent.
    public func identification(unit: Int) throws(ModbusError) -> String? {
        guard let line = try answer(address(unit) + "I!"), line.first == UInt8(unit) else { return nil }
        return String(decoding: line.dropFirst(), as: UTF8.self)
    }

    /// One command's answer line, nil on silence.
    private func answer(_ text: String) throws(ModbusError) -> [UInt8]? {
        do {
            return try command(text, timeoutMs: responseTimeoutMs) { code, message in
                ModbusError(code: code, message: message, bus: bus)
            }
        } catch {
            if error.code == .timeout { return nil }
            throw error
        }
    }

    public static let writeRefusal = "SDI-12 sensors take no Modbus writes"
}
