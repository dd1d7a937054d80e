import ArgumentParser
import PantauCore
import PantauGateway
import PantauModbus

/// A `host:port` option value, parsed once when the command line is (port 502 when left out).
struct TCPEndpoint: Sendable {
    var host: String
    var port: Int

    /// The option's parser: a value that is not `host:port` stops at parse time with `example` as the hint.
    static func parser(example: String) -> @Sendable (String) throws -> TCPEndpoint {
        { text in
            guard let (host, port) = ModbusLink.parseTCP(text) else {
                throw ValidationError("'\(text)' is not host:port (e.g. \(example))")
            }
            return TCPEndpoint(host: host, port: port)
        }
    }
}

/// The help of `--tcp` and `--rtu-over-tcp`: `read` and `raw` name the server to talk to, `scan` the one to search.
protocol EndpointHelp {
    static var tcp: String { get }
    static var rtuOverTcp: String { get }
}

/// Where a command reaches its units: a serial port, a Modbus TCP server, or an RTU-over-TCP server (`read`, `raw`
/// and `scan`).
struct LinkEndpoint<Help: EndpointHelp>: ParsableArguments {
    @Option(help: "Serial device of the RS-485 adapter, e.g. /dev/ttyUSB0.")
    var device: String?

    @Option(help: ArgumentHelp(Help.tcp), transform: TCPEndpoint.parser(example: "--tcp 192.168.1.50:502"))
    var tcp: TCPEndpoint?

    @Option(
        help: ArgumentHelp(Help.rtuOverTcp), transform: TCPEndpoint.parser(example: "--rtu-over-tcp 10.0.0.7:4001"))
    var rtuOverTcp: TCPEndpoint?

    /// How many of the three were given.
    var count: Int { [device != nil, tcp != nil, rtuOverTcp != nil].filter { $0 }.count }

    /// The link to the server given, else to `device` with `serial`; nil when none was given.
    func link(serial: SerialSettings) -> ModbusLink? {
        if let tcp { return .tcp(host: tcp.host, port: tcp.port) }
        if let rtuOverTcp { return .rtuOverTCP(host: rtuOverTcp.host, port: rtuOverTcp.port) }
        return device.map { .rtu(device: $0, serial: serial) }
    }
}

/// The link options `read` and `raw` share: one serial port with one set of line settings, or one TCP server.
struct LinkOptions: ParsableArguments {
    enum Help: EndpointHelp {
        static let tcp = "Modbus TCP server as host:port (port 502 when left out)."
        static let rtuOverTcp = "DTU or serial device server forwarding RTU frames over TCP, as host:port."
    }

    @OptionGroup var endpoint: LinkEndpoint<Help>

    @Option(help: "Baud rate (serial; default: the profile's, else 9600).")
    var baud: Int?

    @Option(help: "Parity: none, even or odd (serial; default: the profile's, else none).")
    var parity: SerialSettings.Parity?

    @Option(help: "Data bits (serial).")
    var dataBits: Int?

    @Option(help: "Stop bits (serial).")
    var stopBits: Int?

    @Option(help: "Response timeout in milliseconds (default: the profile's, else 500).")
    var timeoutMs: Int?

    var given: Bool { endpoint.count > 0 }

    func validate() throws {
        if endpoint.count > 1 {
            throw ValidationError("give one of --device, --tcp or --rtu-over-tcp")
        }
        if let timeoutMs, !(1...60_000).contains(timeoutMs) {
            throw ValidationError("--timeout-ms must be within 1...60000")
        }
    }

    /// Stops a command that needs a link when none was given.
    func requireGiven() throws {
        if !given { throw ValidationError("give --device /dev/ttyUSB0 or --tcp host:port") }
    }

    /// The link, with serial settings not given on the command line taken from `defaults` (a profile's).
    func link(defaults: SerialSettings = SerialSettings()) throws -> ModbusLink {
        let serial = SerialSettings(
            baud: baud ?? defaults.baud, parity: parity ?? defaults.parity, dataBits: dataBits ?? defaults.dataBits,
            stopBits: stopBits ?? defaults.stopBits)
        guard let link = endpoint.link(serial: serial) else {
            throw fail("no link given", hint: "add --device /dev/ttyUSB0 (serial) or --tcp host:port", code: .usage)
        }
        if case .rtu(let device, _, _) = link, let problem = ModbusConnection.validate(serial: serial, bus: device) {
            throw fail(problem.message, hint: "serial device \(device)", code: .usage)
        }
        return link
    }
}

extension SerialSettings.Parity: ExpressibleByArgument {}
