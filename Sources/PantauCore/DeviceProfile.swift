/// A Modbus data table. Addresses in profiles and configs are always 0-based protocol addresses.
public enum RegisterTable: String, Sendable, Hashable, CaseIterable {
    case holding, input, coil, discrete

    /// Coils and discrete inputs carry bits, the others 16-bit registers.
    public var isBitTable: Bool { self == .coil || self == .discrete }
    /// The Modbus function code that reads this table.
    public var readFunctionCode: UInt8 {
        switch self {
        case .coil: return 0x01
        case .discrete: return 0x02
        case .holding: return 0x03
        case .input: return 0x04
        }
    }
}

/// The type a point is encoded as on the wire.
public enum ValueType: String, Sendable, Hashable, CaseIterable {
    case u16, i16, u32, i32, u64, i64, f32, f64, string, bit

    /// Registers occupied, for fixed-size types; `string` takes its length from the point.
    public var registerCount: Int? {
        switch self {
        case .u16, .i16, .bit: return 1
        case .u32, .i32, .f32: return 2
        case .u64, .i64, .f64: return 4
        case .string: return nil
        }
    }
}

/// Byte order in ABCD notation: the letters name the value's bytes from most significant (A) down, written in the
/// order they arrive on the wire. `ABCD` is big-endian (the Modbus default), `CDAB` swaps words, `BADC` swaps bytes
/// within words, `DCBA` is little-endian. A 16-bit value uses `AB` or `BA`, a 64-bit one eight letters.
public struct ByteOrder: Sendable, Hashable, CustomStringConvertible {
    /// `wirePosition[i]` is the significance index (0 = A) of the byte at wire position `i`.
    public let significanceAtWirePosition: [Int]

    /// Parses e.g. `"CDAB"`; nil unless it is a permutation of the first `byteCount` letters.
    public init?(_ text: String, byteCount: Int) {
        let letters = Array(text.uppercased())
        guard letters.count == byteCount else { return nil }
        var indices: [Int] = []
        for letter in letters {
            guard let ascii = letter.asciiValue, ascii >= 65, Int(ascii - 65) < byteCount else { return nil }
            indices.append(Int(ascii - 65))
        }
        guard Set(indices).count == byteCount else { return nil }
        significanceAtWirePosition = indices
    }

    /// Big-endian order for a value of `byteCount` bytes.
    public static func bigEndian(byteCount: Int) -> ByteOrder {
        ByteOrder(String("ABCDEFGH".prefix(byteCount)), byteCount: byteCount)!
    }

    public var description: String {
        String(significanceAtWirePosition.map { Character(Unicode.Scalar(UInt8(65 + $0))) })
    }
}

/// How a raw integer maps to a signed value beyond two's complement.
public enum IntegerEncoding: String, Sendable, Hashable {
    case twosComplement = "twos_complement"
    /// Top bit is the sign, the rest the magnitude (some ultrasonic level sensors).
    case signMagnitude = "sign_magnitude"
}

/// One value a device exposes: where it is, how it is encoded, and what it means.
public struct PointSpec: Sendable, Hashable {
    public var name: String
    /// What is measured, from the quantity vocabulary (`pm2_5`, `water_level`, `rain_tips`, ...).
    public var quantity: String
    public var table: RegisterTable
    /// 0-based protocol address of the first register or bit.
    public var address: Int
    public var type: ValueType
    public var order: ByteOrder
    /// Registers a string occupies (2 characters each); ignored for other types.
    public var length: Int
    /// For `bit` in a register table: which bit (0 = least significant) of the register.
    public var bit: Int?
    public var encoding: IntegerEncoding
    public var scale: Double
    public var offset: Double
    /// Another point of the same profile whose value is the number of decimal places: value × 10^-decimals.
    public var decimalsFrom: String?
    public var unit: String
    /// Inclusive valid range in engineering units; outside it a reading is `out_of_range`.
    public var validRange: ClosedRange<Double>?
    /// Points that only configure another point (a decimals register) may be hidden from telemetry.
    public var publish: Bool
    /// A remote `write` command may set it, within `validRange` (profile key `writable: true`).
    public var writable = false

    public init(
        name: String, quantity: String, table: RegisterTable, address: Int, type: ValueType,
        order: ByteOrder? = nil, length: Int = 1, bit: Int? = nil, encoding: IntegerEncoding = .twosComplement,
        scale: Double = 1, offset: Double = 0, decimalsFrom: String? = nil, unit: String = "",
        validRange: ClosedRange<Double>? = nil, publish: Bool = true
    ) {
        self.name = name
        self.quantity = quantity
        self.table = table
        self.address = address
        self.type = type
        let bytes = (type.registerCount ?? length) * 2
        self.order = order ?? ByteOrder.bigEndian(byteCount: type == .string ? 2 : bytes)
        self.length = length
        self.bit = bit
        self.encoding = encoding
        self.scale = scale
        self.offset = offset
        self.decimalsFrom = decimalsFrom
        self.unit = unit
        self.validRange = validRange
        self.publish = publish
    }

    /// Registers (or bits, for bit tables) this point occupies.
    public var span: Int {
        if table.isBitTable { return 1 }
        return type.registerCount ?? length
    }
}

/// Serial line defaults a device ships with.
public struct SerialSettings: Sendable, Hashable {
    public enum Parity: String, Sendable, Hashable { case none, even, odd }
    public var baud: Int
    public var parity: Parity
    public var dataBits: Int
    public var stopBits: Int

    public init(baud: Int = 9600, parity: Parity = .none, dataBits: Int = 8, stopBits: Int = 1) {
        self.baud = baud
        self.parity = parity
        self.dataBits = dataBits
        self.stopBits = stopBits
    }

    /// Bits per character on the wire: start + data + parity + stop.
    public var bitsPerCharacter: Int { 1 + dataBits + (parity == .none ? 0 : 1) + stopBits }

    /// The Modbus t3.5 inter-frame silence in microseconds (fixed 1750 µs above 19200 baud, per the spec).
    public var interFrameSilenceMicros: Int {
        if baud > 19200 { return 1750 }
        return Int((3.5 * Double(bitsPerCharacter) * 1_000_000 / Double(baud)).rounded(.up))
    }
}

/// How a device wants to be talked to.
public struct ProfileTiming: Sendable, Hashable {
    public var responseTimeoutMs: Int
    public var interRequestDelayMs: Int
    public var retries: Int
    /// The most registers the device accepts in one read (125 by the protocol; some devices less).
    public var maxRegistersPerRead: Int
    /// The largest hole of unused registers a coalesced read may span.
    public var maxGap: Int
    /// Some devices answer only reads of exactly one point.
    public var singlePointReads: Bool

    public init(
        responseTimeoutMs: Int = 500, interRequestDelayMs: Int = 0, retries: Int = 1,
        maxRegistersPerRead: Int = 125, maxGap: Int = 8, singlePointReads: Bool = false
    ) {
        self.responseTimeoutMs = responseTimeoutMs
        self.interRequestDelayMs = interRequestDelayMs
        self.retries = retries
        self.maxRegistersPerRead = maxRegistersPerRead
        self.maxGap = maxGap
        self.singlePointReads = singlePointReads
    }
}

extension ProfileTiming {
    /// One poll is one read spanning every point: a framed sensor's frame, an SDI-12 measurement.
    mutating func spanEveryPointInOneRead() {
        maxRegistersPerRead = 125
        maxGap = 124
        singlePointReads = false
    }
}

/// Registers that identify a model, used by `pantau scan`.
public struct IdentificationRule: Sendable, Hashable {
    public var table: RegisterTable
    public var address: Int
    /// Expected raw register values starting at `address`.
    public var expect: [UInt16]

    public init(table: RegisterTable, address: Int, expect: [UInt16]) {
        self.table = table
        self.address = address
        self.expect = expect
    }
}

/// Raw registers and the engineering values a profile must decode them to.
public struct TestVector: Sendable, Hashable {
    public var description: String
    /// Raw contents per table, by 0-based address. Bit tables hold 0 or 1.
    public var registers: [RegisterTable: [Int: UInt16]]
    /// Expected values by point name: numbers compared with a tolerance of half the last scale step.
    public var expect: [String: PointValue]

    public init(description: String, registers: [RegisterTable: [Int: UInt16]], expect: [String: PointValue]) {
        self.description = description
        self.registers = registers
        self.expect = expect
    }
}

/// One sensor model and firmware range: serial defaults, timing, and every point with its encoding.
public struct DeviceProfile: Sendable, Hashable {
    public var id: String
    public var version: Int
    public var manufacturer: String
    public var model: String
    public var firmware: String
    /// Where the register map comes from (datasheet, page).
    public var source: String
    public var defaultUnitId: Int?
    public var serial: SerialSettings
    public var timing: ProfileTiming
    public var identification: [IdentificationRule]
    public var points: [PointSpec]
    public var testVectors: [TestVector]
    /// The file the profile was loaded from, for messages.
    public var file: String
    /// For a framed UART sensor (not Modbus): how its frames look; see `FrameSpec`.
    public var frame: FrameSpec?
    /// For an SDI-12 sensor: its measurement command and value count; see `SDI12Spec`.
    public var sdi12: SDI12Spec?

    public init(
        id: String, version: Int = 1, manufacturer: String = "", model: String = "", firmware: String = "",
        source: String = "", defaultUnitId: Int? = nil, serial: SerialSettings = SerialSettings(),
        timing: ProfileTiming = ProfileTiming(), identification: [IdentificationRule] = [], points: [PointSpec],
        testVectors: [TestVector] = [], file: String = ""
    ) {
        self.id = id
        self.version = version
        self.manufacturer = manufacturer
        self.model = model
        self.firmware = firmware
        self.source = source
        self.defaultUnitId = defaultUnitId
        self.serial = serial
        self.timing = timing
        self.identification = identification
        self.points = points
        self.testVectors = testVectors
        self.file = file
    }

    public func point(named name: String) -> PointSpec? { points.first { $0.name == name } }
}
