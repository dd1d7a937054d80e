/// How a profile reads an SDI-12 sensor (SDI-12 v1.4: 1200 baud 7E1, break, `aM!`/`aC!` and `aD0!`...), given
/// in its `sdi12:` section. Measurement value i (1-based, in the order the sensor sends them) is shown to the
/// profile's points as an f64 in input registers 4(i-1) ... 4(i-1)+3, so `table: input, address: 0, type: f64`
/// is the first value, `address: 4` the second.
public struct SDI12Spec: Sendable, Hashable {
    public enum Command: String, Sendable, Hashable, CaseIterable {
        /// `aM!`: start a measurement, wait for the service request, then `aD0!`, `aD1!`, ...
        case M
        /// `aMC!`: the same with a CRC on every data response.
        case MC
        /// `aC!`: concurrent measurement (no service request; wait the announced time).
        case C
        /// `aCC!`: concurrent with CRC.
        case CC
    }

    public var command: Command
    /// The values the measurement must give (`n` of the `atttn` reply).
    public var values: Int

    public init(command: Command, values: Int) {
        self.command = command
        self.values = values
    }

    public var crc: Bool { command == .MC || command == .CC }
    public var concurrent: Bool { command == .C || command == .CC }
    public static let registersPerValue = 4

    /// Addresses SDI-12 allows: `0`-`9`, `A`-`Z`, `a`-`z`. A configuration gives one as the `unit` of a device on
    /// an `sdi12` bus, written as the address character's ASCII code (48 is address `0`).
    public static func isAddress(_ code: Int) -> Bool {
        (48...57).contains(code) || (65...90).contains(code) || (97...122).contains(code)
    }

    /// CRC-16/ARC (polynomial 0xA001 reflected, initial 0), as SDI-12 v1.4 §4.4.12 computes it over a response
    /// from its address to its last value.
    public static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
        }
        return crc
    }

    /// The CRC as SDI-12 sends it: three characters 0x40 | each 6-bit group, most significant first.
    public static func encodeCRC(_ crc: UInt16) -> [UInt8] {
        [0x40 | UInt8(crc >> 12), 0x40 | UInt8((crc >> 6) & 0x3F), 0x40 | UInt8(crc & 0x3F)]
    }

    public enum Fault: String, Sendable, Hashable {
        case crc
        case shape
    }

    /// The values of a data response (`a+1.23-4.5` and, with `crc`, three CRC characters; no CR LF), after
    /// checking its address and CRC.
    public static func parseData(_ line: [UInt8], address: UInt8, crc: Bool) -> Result<[Double], ParseFailure> {
        guard line.first == address else {
            let got = line.first.map { String(UnicodeScalar($0)) } ?? "nothing"
            return .failure(
                ParseFailure(.shape, "response from address '\(got)', expected '\(UnicodeScalar(address))'"))
        }
        var body = Array(line)
        if crc {
            guard body.count >= 4 else { return .failure(ParseFailure(.shape, "response too short for its CRC")) }
            let sent = Array(body.suffix(3))
            body.removeLast(3)
            let computed = encodeCRC(crc16(body))
            guard sent == computed else {
                let text = { (b: [UInt8]) in String(decoding: b, as: UTF8.self) }
                return .failure(ParseFailure(.crc, "SDI-12 CRC '\(text(sent))', computed '\(text(computed))'"))
            }
        }
        var values: [Double] = []
        var current = ""
        for byte in body.dropFirst() {
            let c = Character(UnicodeScalar(byte))
            if c == "+" || c == "-" {
                if !current.isEmpty {
                    guard let v = Double(current) else {
                        return .failure(ParseFailure(.shape, "'\(current)' is not a number"))
                    }
                    values.append(v)
                }
                current = String(c)
            } else if c.isNumber || c == "." {
                guard !current.isEmpty else {
                    return .failure(ParseFailure(.shape, "a value without its sign in '\(text(line))'"))
                }
                current.append(c)
            } else {
                return .failure(ParseFailure(.shape, "unexpected '\(c)' in '\(text(line))'"))
            }
        }
        if !current.isEmpty {
            guard let v = Double(current), current.count > 1 else {
                return .failure(ParseFailure(.shape, "'\(current)' is not a number"))
            }
            values.append(v)
        }
        return .success(values)
    }

    public struct ParseFailure: Error, Sendable, Hashable {
        public var fault: Fault
        public var message: String
        public init(_ fault: Fault, _ message: String) {
            self.fault = fault
            self.message = message
        }
    }

    /// `atttn` (M) or `atttnn` (C): seconds until the data is ready and how many values there will be.
    public static func parseMeasureReply(_ line: [UInt8], address: UInt8, concurrent: Bool) -> (
        seconds: Int, count: Int
    )? {
        let digits = concurrent ? 2 : 1
        guard line.count == 4 + digits, line.first == address else { return nil }
        let text = String(decoding: line.dropFirst(), as: UTF8.self)
        guard text.allSatisfy(\.isNumber), let seconds = Int(text.prefix(3)), let count = Int(text.dropFirst(3))
        else { return nil }
        return (seconds, count)
    }

    /// Values as input registers: value i as a big-endian f64 at 4i.
    public static func registers(_ values: [Double]) -> [Int: UInt16] {
        var out: [Int: UInt16] = [:]
        for (i, v) in values.enumerated() {
            let bits = v.bitPattern
            for w in 0..<4 { out[i * 4 + w] = UInt16(truncatingIfNeeded: bits >> UInt64(48 - 16 * w)) }
        }
        return out
    }

    /// A value as SDI-12 sends it: sign, digits, at most `decimals` decimals, no leading zeros.
    public static func format(_ value: Double, decimals: Int = 3) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int64((abs(value) * scale).rounded())
        let sign = value < 0 && scaled != 0 ? "-" : "+"
        let whole = scaled / Int64(scale)
        var fraction = String(scaled % Int64(scale))
        fraction = String(repeating: "0", count: max(0, decimals - fraction.count)) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return sign + String(whole) + (fraction.isEmpty ? "" : "." + fraction)
    }
}

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// An SDI-12 bus: one serial port (a USB SDI-12 adapter or a UART with the inverting level shifter) with
/// sensors addressed `0`-`9`, `A`-`Z`, `a`-`z`.
public struct SDI12Settings: Sendable, Hashable {
    public var device: String
    /// 1200 baud 7E1 unless the bus entry says otherwise (some adapters take commands at another rate).
    public var serial: SerialSettings
    /// Each sensor's measurement, by unit (the address's ASCII code); attached when the configuration is parsed.
    public var sensors: [Int: SDI12Spec]

    public static let standardSerial = SerialSettings(baud: 1200, parity: .even, dataBits: 7, stopBits: 1)

    public init(device: String, serial: SerialSettings = SDI12Settings.standardSerial, sensors: [Int: SDI12Spec] = [:])
    {
        self.device = device
        self.serial = serial
        self.sensors = sensors
    }
}
