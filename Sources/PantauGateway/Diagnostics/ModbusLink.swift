import PantauCore
import PantauModbus

/// Where a diagnostic command talks Modbus: a serial port with its line settings, or a TCP host and port.
public enum ModbusLink: Sendable, Hashable, CustomStringConvertible {
    case rtu(device: String, serial: SerialSettings, rs485: Bool = false)
    case tcp(host: String, port: Int)
    /// RTU frames through a DTU or serial device server (`RTUOverTCPTransport`).
    case rtuOverTCP(host: String, port: Int)
    /// A framed UART sensor on a serial port (`FrameTransport`); from a configuration's `uart` bus.
    case uart(UARTSettings)
    /// SDI-12 sensors on a serial port (`SDI12Transport`); from a configuration's `sdi12` bus.
    case sdi12(SDI12Settings)

    /// The default Modbus TCP port.
    public static let defaultTCPPort = 502

    /// `/dev/ttyUSB0 9600 8N1` or `tcp 127.0.0.1:502`: also the bus name in every error.
    public var description: String {
        switch self {
        case .rtu(let device, let serial, _): return "\(device) \(serial.baud) \(serial.frameNotation)"
        case .tcp(let host, let port): return "tcp \(host):\(port)"
        case .rtuOverTCP(let host, let port): return "rtu-over-tcp \(host):\(port)"
        case .uart(let s): return "\(s.device) \(s.serial.baud) \(s.serial.frameNotation) uart"
        case .sdi12(let s): return "\(s.device) \(s.serial.baud) \(s.serial.frameNotation) sdi12"
        }
    }

    /// A connected master with the given response timeout.
    public func open(responseTimeoutMs: Int) throws(ModbusError) -> any ModbusMaster {
        let connection: any ModbusMaster
        switch self {
        case .rtu(let device, let serial, let rs485):
            connection = try ModbusConnection.rtu(device: device, serial: serial, rs485: rs485, bus: description)
        case .tcp(let host, let port):
            connection = try ModbusConnection.tcp(host: host, port: port, bus: description)
        case .rtuOverTCP(let host, let port):
            connection = RTUOverTCPTransport(settings: RTUOverTCPSettings(host: host, port: port), bus: description)
        case .uart(let settings):
            connection = try FrameTransport(settings: settings, bus: description)
        case .sdi12(let settings):
            connection = SDI12Transport(settings: settings, bus: description)
        }
        connection.setResponseTimeout(ms: responseTimeoutMs)
        try connection.connect()
        return connection
    }

    /// Parses `host:port`, `host` (port 502) or `[v6-address]:port`; nil when the port is not a number in 1...65535.
    public static func parseTCP(_ text: String) -> (host: String, port: Int)? {
        var host = Substring(text)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = host.lastIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty else { return nil }
        guard let portText else { return (String(host), defaultTCPPort) }
        guard let port = Int(portText), (1...65535).contains(port) else { return nil }
        return (String(host), port)
    }
}

extension SerialSettings {
    /// The usual shorthand for data bits, parity and stop bits, e.g. `8N1` or `8E1`.
    public var frameNotation: String {
        let letter: String
        switch parity {
        case .none: letter = "N"
        case .even: letter = "E"
        case .odd: letter = "O"
        }
        return "\(dataBits)\(letter)\(stopBits)"
    }
}

/// The register numbering a PLC or datasheet uses next to the 0-based protocol address on the wire.
public enum PLCAddress {
    /// The 5-digit PLC number (6-digit above address 9998): coil 00001+A, discrete 10001+A, input 30001+A,
    /// holding 40001+A.
    public static func number(table: RegisterTable, address: Int) -> Int {
        let wide = address > 9998
        let base: Int
        switch table {
        case .coil: base = 1
        case .discrete: base = wide ? 100_001 : 10_001
        case .input: base = wide ? 300_001 : 30_001
        case .holding: base = wide ? 400_001 : 40_001
        }
        return base + address
    }

    /// The PLC number as usually written, with leading zeros for coils (00001).
    public static func text(table: RegisterTable, address: Int) -> String {
        let digits = String(number(table: table, address: address))
        let width = address > 9998 ? 6 : 5
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The name of the table's PLC range, e.g. `4xxxx` for holding registers.
    public static func rangeName(_ table: RegisterTable) -> String {
        switch table {
        case .coil: return "0xxxx"
        case .discrete: return "1xxxx"
        case .input: return "3xxxx"
        case .holding: return "4xxxx"
        }
    }

    /// The address convention spelled out, e.g. "0-based protocol address 10 = holding register 40011 in PLC
    /// notation (4xxxx = address + 40001)".
    public static func convention(table: RegisterTable, address: Int) -> String {
        let what = table.isBitTable ? (table == .coil ? "coil" : "discrete input") : "\(table.rawValue) register"
        let offset = number(table: table, address: 0)
        return "0-based protocol address \(address) = \(what) \(text(table: table, address: address)) in PLC "
            + "notation (\(rangeName(table)) = address + \(offset))"
    }
}

extension ModbusError {
    /// Where it happened for a technician: bus, unit and the register in both numberings.
    public var placeForTechnician: String {
        var parts = ["bus \(bus)"]
        if let unit { parts.append("unit \(unit)") }
        if let table, let address {
            let what = "\(table.rawValue) \(address) (PLC \(PLCAddress.text(table: table, address: address)))"
            parts.append(count.map { $0 > 1 ? "\(what), count \($0)" : what } ?? what)
        }
        return parts.joined(separator: ", ")
    }

    /// One line saying where it failed and what to try next.
    public var technicianHint: String {
        let next: String
        switch self.class {
        case .connection:
            next = "check the serial device path or host:port, and that no other program holds the port"
        case .link:
            next =
                "check power, wiring (A/B), the unit id and the line settings; "
                + "`pantau scan` lists the units that answer"
        case .config:
            next =
                "the device refuses this table or address: check the register map (addresses here are 0-based; "
                + "--one-based accepts 1-based numbers)"
        case .busy:
            next = "the device is busy or reports a fault; try again"
        }
        return "\(placeForTechnician): \(next)"
    }
}
