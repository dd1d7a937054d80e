import PantauPlatform
import PantauYAML

extension ConfigParser {
    /// The keys of a `type: rtu_over_tcp` bus: `host`, `port` (default 502) and, when the serial side's line
    /// settings are known, `baud`, `parity`, `data_bits`, `stop_bits` (they give the t3.5 silence kept between
    /// requests); `inter_frame_delay_us` overrides that silence.
    static func rtuOverTCP(_ b: MappingReader, reader: NodeReader, what: String) -> BusConfig.Transport? {
        let host = b.string("host", required: true)
        let port = b.int("port", range: 1...65535) ?? 502
        let given = b.has("baud") || b.has("parity") || b.has("data_bits") || b.has("stop_bits")
        let serial = given ? lineSettings(b, reader: reader, what: what).applied(to: SerialSettings()) : nil
        let delay = b.int("inter_frame_delay_us", range: 0...1_000_000)
        guard let host else { return nil }
        if host.isEmpty, let node = b.value("host") {
            reader.error(node, "'host' of \(what) is empty")
            return nil
        }
        return .rtuOverTCP(RTUOverTCPSettings(host: host, port: port, serial: serial, interFrameDelayMicros: delay))
    }
}

extension ConfigParser {
    /// The line-setting keys a serial bus may give (`baud`, `parity`, `data_bits`, `stop_bits`), each nil when
    /// absent; a baud that is not a standard rate is an error and left out.
    static func lineSettings(_ b: MappingReader, reader: NodeReader, what: String) -> UARTSettings.LineOverrides {
        var given = UARTSettings.LineOverrides()
        if let baud = b.int("baud") {
            if ProfileParser.supportedBauds.contains(baud) {
                given.baud = baud
            } else if let n = b.value("baud") {
                let known = ProfileParser.supportedBauds.map(String.init).joined(separator: ", ")
                reader.error(n, "baud \(baud) of \(what) is not a standard rate (\(known))")
            }
        }
        let parities: [(String, SerialSettings.Parity)] = [("none", .none), ("even", .even), ("odd", .odd)]
        given.parity = b.choice("parity", parities)
        given.dataBits = b.int("data_bits", range: 7...8)
        given.stopBits = b.int("stop_bits", range: 1...2)
        return given
    }

    /// The keys of a `type: uart` bus: `device` and, when they differ from the sensor profile's, `baud`, `parity`,
    /// `data_bits`, `stop_bits`. The line settings not given are taken from the profile in `attachSensors`.
    static func uart(_ b: MappingReader, reader: NodeReader, what: String) -> BusConfig.Transport? {
        let device = b.string("device", required: true)
        let given = lineSettings(b, reader: reader, what: what)
        guard let device else { return nil }
        return .uart(UARTSettings(device: device, overrides: given))
    }

    /// The keys of a `type: sdi12` bus: `device` and, for adapters that need it, `baud`, `parity`, `data_bits`,
    /// `stop_bits` (default 1200 7E1, the SDI-12 line).
    static func sdi12(_ b: MappingReader, reader: NodeReader, what: String) -> BusConfig.Transport? {
        let device = b.string("device", required: true)
        let serial = lineSettings(b, reader: reader, what: what).applied(to: SDI12Settings.standardSerial)
        guard let device else { return nil }
        return .sdi12(SDI12Settings(device: device, serial: serial))
    }

    /// Gives each `uart` bus the frame of its one sensor and the line settings its bus entry left out, and checks
    /// that framed sensors sit on `uart` buses and Modbus devices do not.
    static func attachSensors(
        _ buses: [(BusConfig, YAMLNode)], _ devices: [DeviceConfig], _ reader: NodeReader
    ) -> [BusConfig] {
        var ports: [String: String] = [:]
        // One bus per serial port, however it is spelled.
        func claim(_ device: String, for bus: String, _ node: YAMLNode) {
            let canonical = FileSystem.canonical(device)
            if let other = ports[canonical] {
                reader.error(
                    node,
                    "bus '\(bus)' uses serial port '\(device)', which bus '\(other)' already owns; one bus per port")
            }
            ports[canonical] = bus
        }
        return buses.map { bus, node in
            let on = devices.filter { $0.bus == bus.name }
            if case .sdi12(var settings) = bus.transport {
                claim(settings.device, for: bus.name, node)
                for device in on {
                    guard let spec = device.profile.sdi12 else {
                        reader.error(
                            node,
                            "device '\(device.name)' on sdi12 bus '\(bus.name)' uses profile '\(device.profile.id)', "
                                + "which has no 'sdi12' section")
                        continue
                    }
                    guard SDI12Spec.isAddress(device.unitId) else {
                        reader.error(
                            node,
                            "device '\(device.name)' on sdi12 bus '\(bus.name)' has unit \(device.unitId), not an "
                                + "SDI-12 address: give the address's ASCII code (48 = '0', 49 = '1', 97 = 'a')")
                        continue
                    }
                    settings.sensors[device.unitId] = spec
                }
                return BusConfig(name: bus.name, transport: .sdi12(settings))
            }
            guard case .uart(var settings) = bus.transport else {
                for device in on where device.profile.frame != nil || device.profile.sdi12 != nil {
                    let kind = device.profile.frame != nil ? "a framed UART sensor" : "an SDI-12 sensor"
                    let bus = device.profile.frame != nil ? "uart" : "sdi12"
                    reader.error(
                        node,
                        "device '\(device.name)' uses profile '\(device.profile.id)', \(kind) (not "
                            + "Modbus): put it on a bus of type \(bus)")
                }
                if case .rtu(let rtu) = bus.transport { ports[FileSystem.canonical(rtu.device)] = bus.name }
                return bus
            }
            claim(settings.device, for: bus.name, node)
            guard on.count == 1, let sensor = on.first else {
                reader.error(
                    node,
                    "bus '\(bus.name)' is a uart bus: it carries exactly one framed sensor, found \(on.count) "
                        + "devices" + (on.isEmpty ? "" : " (\(on.map(\.name).joined(separator: ", ")))"))
                return bus
            }
            guard let frame = sensor.profile.frame else {
                reader.error(
                    node,
                    "device '\(sensor.name)' on uart bus '\(bus.name)' uses profile '\(sensor.profile.id)', which "
                        + "describes no frame: use a bus of type rtu for a Modbus device")
                return bus
            }
            settings.serial = settings.overrides.applied(to: sensor.profile.serial)
            settings.frame = frame
            return BusConfig(name: bus.name, transport: .uart(settings))
        }
    }
}
