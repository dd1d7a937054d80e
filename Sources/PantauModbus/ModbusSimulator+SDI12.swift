import PantauCore

extension ModbusSimulator {
    /// Serves SDI-12 sensors on a tty (one end of a socat pty pair): each unit whose profile has an `sdi12`
    /// section answers at the address its unit encodes (ASCII code), with its simulated values: `?!`, `a!`,
    /// `aI!`, `aM!`/`aMC!`/`aC!`/`aCC!` (data ready at once: ttt = 000) and `aD0!` with every value (and the CRC
    /// after a C variant). A silent unit does not answer.
    public func serveSDI12(device: String, serial: SerialSettings, sensors: [Int: SDI12Spec]) throws(ModbusError) {
        let port = SerialPort(device: device, serial: serial, bus: "simulator")
        try port.open()
        logger.info("simulator serving SDI-12", metadata: ["device": "\(device)", "sensors": "\(sensors.count)"])
        let handed = HandedSDI12Port(port: port)
        startThread { [self] in sdi12Loop(handed.port, sensors: sensors) }
    }

    private func sdi12Loop(_ port: SerialPort, sensors: [Int: SDI12Spec]) {
        defer { port.close() }
        var received: [UInt8] = []
        var crc: [Int: Bool] = [:]
        while !isStopping {
            guard let bytes = try? port.read(max: 128, timeoutMs: 100) else { return }
            received += bytes.map { $0 & 0x7F }.filter { $0 != 0 }
            while let end = received.firstIndex(of: UInt8(ascii: "!")) {
                let command = Array(received[..<end])
                received.removeSubrange(...end)
                if let reply = sdi12Reply(command, sensors: sensors, crc: &crc) { try? port.write(reply) }
            }
            if received.count > 256 { received.removeAll() }
        }
    }

    private func sdi12Reply(_ command: [UInt8], sensors: [Int: SDI12Spec], crc: inout [Int: Bool]) -> [UInt8]? {
        if command == [UInt8(ascii: "?")], let first = sensors.keys.sorted().first {
            return [UInt8(first)] + [0x0D, 0x0A]
        }
        guard let a = command.first, let spec = sensors[Int(a)], case .image(let image) = lookup(unit: Int(a))
        else { return nil }
        let body = String(decoding: command.dropFirst(), as: UTF8.self)
        let address = String(UnicodeScalar(a))
        var line: String
        switch body {
        case "": line = address
        case "I": line = address + "14PANTAU  SIM   001SIMULATED"
        case "M", "MC":
            crc[Int(a)] = body == "MC"
            line = address + "000" + String(spec.values)
        case "C", "CC":
            crc[Int(a)] = body == "CC"
            line = address + "000" + (spec.values < 10 ? "0" : "") + String(spec.values)
        case "D0":
            let words = image.tables[.input] ?? [:]
            let values = (0..<spec.values).map { i -> Double in
                let bits = (0..<4).reduce(UInt64(0)) { $0 << 16 | UInt64(words[i * 4 + $1] ?? 0) }
                return Double(bitPattern: bits)
            }
            line = address + values.map { SDI12Spec.format($0) }.joined()
            if crc[Int(a)] ?? false {
                line += String(decoding: SDI12Spec.encodeCRC(SDI12Spec.crc16(Array(line.utf8))), as: UTF8.self)
            }
        default:
            if body.hasPrefix("D") { line = address } else { return nil }
        }
        return Array(line.utf8) + [0x0D, 0x0A]
    }
}

/// A serial port handed to the one thread that will use it.
private struct HandedSDI12Port: @unchecked Sendable {
    let port: SerialPort
}
