import ArgumentParser
import Logging
import PantauCore
import PantauGateway
import PantauModbus
import PantauPlatform
import UnixSignals

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Serve device profiles as simulated devices (Modbus TCP, RTU on a tty, RTU over TCP).",
        discussion: """
            Each --profile ID[:UNIT] adds a device (unit: the profile's factory id, else 1, 2, ...). Values follow \
            daily cycles (PM2.5, temperature), a slowly rising river, a rain counter. Example:
              pantau simulate --profile vaisala-aqt530:1 --profile qdy30a:2 --tcp-port 1502
              pantau simulate --profile qdy30a --rtu /tmp/pty-b --ramp 1:level:140:30
              pantau simulate --profile qdy30a:1 --profile xy-md02:2 --rtu-over-tcp-port 4001
              pantau simulate --profile nova-sds011 --uart /tmp/pty-b --constant 1:pm2_5:35
              pantau simulate --profile ott-pls:48 --sdi12 /tmp/pty-b --constant 48:level:1.25
            """)

    @OptionGroup var dirs: ProfileDirectoryOptions

    @Option(name: .customLong("profile"), help: "A profile to serve, as ID or ID:UNIT (repeatable).")
    var profiles: [String]

    @Option(help: "Listen for Modbus TCP on this port (0 picks a free one).") var tcpPort: Int?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Serve Modbus RTU on this tty (e.g. one end of a socat pty pair).") var rtu: String?
    @Option(help: "Serve Modbus RTU over TCP (a DTU's stream: RTU frames, no MBAP) on this port (0: a free one).")
    var rtuOverTcpPort: Int?
    @Option(help: "Serve the one framed UART sensor profile (PMS5003, SDS011, ...) on this tty.") var uart: String?
    @Option(help: "Serve the SDI-12 sensor profiles (units = address ASCII codes, 48 = '0') on this tty.")
    var sdi12: String?
    @Option(help: "RTU baud rate.") var baud = 9600
    @Option(help: "RTU parity: none, even, odd.") var parity = "none"
    @Option(help: "Water level the river starts at, in metres.") var riverLevel = 1.5
    @Option(help: "Make a point ramp: UNIT:POINT:START:PER_MINUTE in the point's unit (repeatable).")
    var ramp: [String] = []
    @Option(help: "Hold a point constant: UNIT:POINT:VALUE (repeatable).") var constant: [String] = []
    @Option(help: "A unit id that never answers (repeatable).") var silent: [Int] = []

    func run() async throws {
        JournaldLogHandler.bootstrap(logLevel: .info)
        let logger = Logger(label: "pantau.simulate")
        var devices: [(unit: Int, profile: DeviceProfile)] = []
        var next = 1
        for spec in profiles {
            let parts = spec.split(separator: ":").map(String.init)
            let profile = try dirs.profile(parts[0])
            var unit: Int
            if parts.count > 1 {
                guard let u = Int(parts[1]), (1...247).contains(u) else {
                    throw fail("'\(spec)': the unit after ':' must be 1-247", code: .usage)
                }
                unit = u
            } else {
                unit = profile.defaultUnitId.flatMap { (1...247).contains($0) ? $0 : nil } ?? next
            }
            while devices.contains(where: { $0.unit == unit }) { unit += 1 }
            next = unit + 1
            devices.append((unit, profile))
        }
        let clock = SystemClock()
        let simulator = ModbusSimulator(devices: devices, clock: clock, logger: logger, riverLevelMeters: riverLevel)
        for r in ramp {
            let p = r.split(separator: ":").map(String.init)
            guard p.count == 4, let unit = Int(p[0]), let start = Double(p[2]), let rate = Double(p[3]) else {
                throw fail("--ramp '\(r)' must be UNIT:POINT:START:PER_MINUTE", code: .usage)
            }
            simulator.setSignal(unit: unit, point: p[1], .ramp(start: start, perMinute: rate, from: clock.now()))
        }
        for c in constant {
            let p = c.split(separator: ":").map(String.init)
            guard p.count == 3, let unit = Int(p[0]), let value = Double(p[2]) else {
                throw fail("--constant '\(c)' must be UNIT:POINT:VALUE", code: .usage)
            }
            simulator.setSignal(unit: unit, point: p[1], .constant(value))
        }
        for unit in silent { simulator.setSilent(unit: unit, true) }
        guard tcpPort != nil || rtu != nil || rtuOverTcpPort != nil || uart != nil || sdi12 != nil else {
            throw fail(
                "nothing to serve on",
                hint: "give --tcp-port PORT, --rtu TTY, --rtu-over-tcp-port PORT, --uart TTY and/or --sdi12 TTY",
                code: .usage)
        }
        do {
            if let tcpPort {
                let port = try simulator.serveTCP(host: host, port: tcpPort)
                print("serving Modbus TCP on \(host):\(port)")
            }
            if let rtuOverTcpPort {
                let port = try simulator.serveRTUOverTCP(host: host, port: rtuOverTcpPort)
                print("serving Modbus RTU over TCP on \(host):\(port)")
            }
            if let uart {
                let framed = devices.filter { $0.profile.frame != nil }
                guard framed.count == 1, let sensor = framed.first, let frame = sensor.profile.frame else {
                    throw fail(
                        "--uart serves exactly one framed UART sensor profile, \(framed.count) given",
                        hint: "e.g. --profile nova-sds011 --uart /tmp/pty-b", code: .usage)
                }
                try simulator.serveFrames(device: uart, serial: sensor.profile.serial, unit: sensor.unit, frame: frame)
                print("serving framed UART sensor \(sensor.profile.id) on \(uart) (\(frame.mode.rawValue) mode)")
            }
            if let sdi12 {
                var sensors: [Int: SDI12Spec] = [:]
                for d in devices { if let spec = d.profile.sdi12 { sensors[d.unit] = spec } }
                guard !sensors.isEmpty, sensors.keys.allSatisfy(SDI12Spec.isAddress) else {
                    throw fail(
                        "--sdi12 serves SDI-12 profiles at units that are address codes (48 = '0', 97 = 'a')",
                        hint: "e.g. --profile ott-pls:48 --sdi12 /tmp/pty-b", code: .usage)
                }
                try simulator.serveSDI12(device: sdi12, serial: SDI12Settings.standardSerial, sensors: sensors)
                let addresses = sensors.keys.sorted().map { String(UnicodeScalar(UInt8($0))) }.joined(separator: ", ")
                print("serving SDI-12 on \(sdi12) at address \(addresses)")
            }
            if let rtu {
                guard let p = SerialSettings.Parity(rawValue: parity) else {
                    throw fail("--parity must be none, even or odd", code: .usage)
                }
                try simulator.serveRTU(device: rtu, serial: SerialSettings(baud: baud, parity: p))
                print("serving Modbus RTU on \(rtu) at \(baud) baud, parity \(parity)")
            }
        } catch let error as ModbusError {
            throw fail("\(error)", code: .unavailable)
        }
        for d in devices { print("  unit \(d.unit): \(d.profile.id) (\(d.profile.manufacturer) \(d.profile.model))") }
        print("Ctrl-C stops.")
        flushStandardOutput()
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        for await _ in signals { break }
        simulator.stop()
    }
}
