/// How a sensor that speaks its own framed UART protocol (Plantower PMS5003/PMS7003, Nova SDS011, ...) frames its
/// data, described in its profile (`frame:`) so such sensors need no code of their own.
///
/// The frame's bytes are shown to the profile's points as input registers: register N holds frame bytes 2N and
/// 2N+1 (big endian), so a 16-bit field at byte offset 12 is `table: input, address: 6`, and a little-endian one
/// adds `order: BA`. Planner, decoder, ranges and test vectors then work as for Modbus.
public struct FrameSpec: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// The sensor streams frames on its own; a poll takes the next whole frame.
        case active
        /// The sensor answers a query: a poll sends `query` and reads one frame.
        case passive
    }

    public enum ChecksumKind: String, Sendable, Hashable, CaseIterable {
        /// 16-bit sum of the bytes in `from..<to` (Plantower: every byte before the checksum).
        case sum16
        /// 8-bit sum (mod 256) of the bytes in `from..<to` (Nova SDS011: the data bytes 2...7).
        case sum8
        case none
    }

    public struct Checksum: Sendable, Hashable {
        public var kind: ChecksumKind
        /// The bytes summed: `from..<to`.
        public var from: Int
        public var to: Int
        /// Where the checksum sits in the frame.
        public var at: Int
        /// A 16-bit checksum sent low byte first.
        public var littleEndian: Bool

        public init(kind: ChecksumKind, from: Int = 0, to: Int = 0, at: Int = 0, littleEndian: Bool = false) {
            self.kind = kind
            self.from = from
            self.to = to
            self.at = at
            self.littleEndian = littleEndian
        }

        public var width: Int {
            switch kind {
            case .sum16: return 2
            case .sum8: return 1
            case .none: return 0
            }
        }
    }

    /// A big-endian 16-bit field that must hold a fixed value (Plantower's frame length, 28 for 13 data words).
    public struct LengthField: Sendable, Hashable {
        public var offset: Int
        public var value: Int
        public init(offset: Int, value: Int) {
            self.offset = offset
            self.value = value
        }
    }

    public var mode: Mode
    /// The bytes every frame starts with, e.g. `42 4D` (Plantower) or `AA C0` (SDS011 data frames).
    public var start: [UInt8]
    /// The whole frame in bytes, start bytes and checksum included.
    public var length: Int
    public var lengthField: LengthField?
    /// The bytes every frame ends with, e.g. `AB` (SDS011); empty when none.
    public var end: [UInt8]
    public var checksum: Checksum
    /// Bytes sent once after the port opens (e.g. switching the sensor to passive mode).
    public var setup: [UInt8]
    /// Bytes sent before each read in passive mode.
    public var query: [UInt8]

    public init(
        mode: Mode, start: [UInt8], length: Int, lengthField: LengthField? = nil, end: [UInt8] = [],
        checksum: Checksum = Checksum(kind: .none), setup: [UInt8] = [], query: [UInt8] = []
    ) {
        self.mode = mode
        self.start = start
        self.length = length
        self.lengthField = lengthField
        self.end = end
        self.checksum = checksum
        self.setup = setup
        self.query = query
    }

    /// Why a complete frame was refused.
    public enum Fault: String, Sendable, Hashable {
        case checksum
        case shape
    }

    /// What the front of a receive buffer holds.
    public enum Scan: Sendable, Hashable {
        /// No complete frame yet; `skip` bytes of noise before a possible start can go.
        case needMore(skip: Int)
        /// A frame that checks out, after `skip` bytes of noise.
        case frame(skip: Int, bytes: [UInt8])
        /// A complete frame that does not check out, after `skip` bytes of noise; it is `length` bytes long.
        case invalid(skip: Int, fault: Fault, message: String)
    }

    /// Finds the first frame in `buffer`: noise before the start bytes is skipped, a whole frame is checked
    /// (length field, end bytes, checksum) before it is returned.
    public func scan(_ buffer: [UInt8]) -> Scan {
        guard !start.isEmpty else { return .needMore(skip: 0) }
        var i = 0
        while i < buffer.count {
            let available = min(start.count, buffer.count - i)
            if Array(buffer[i..<(i + available)]) == Array(start.prefix(available)) { break }
            i += 1
        }
        let have = buffer.count - i
        if let field = lengthField, have >= field.offset + 2 {
            let value = Int(buffer[i + field.offset]) << 8 | Int(buffer[i + field.offset + 1])
            if value != field.value {
                return .invalid(
                    skip: i, fault: .shape, message: "frame length field \(value), expected \(field.value)")
            }
        }
        guard have >= length else { return .needMore(skip: i) }
        let frame = Array(buffer[i..<(i + length)])
        if !end.isEmpty, Array(frame.suffix(end.count)) != end {
            let got = frame.suffix(end.count).map { hex($0) }.joined(separator: " ")
            return .invalid(skip: i, fault: .shape, message: "frame ends in \(got), expected \(hexString(end))")
        }
        if let (stored, computed) = checksums(frame), stored != computed {
            return .invalid(
                skip: i, fault: .checksum,
                message: "frame checksum \(checksum.kind.rawValue) is 0x\(hex(stored)), computed 0x\(hex(computed))")
        }
        return .frame(skip: i, bytes: frame)
    }

    /// The stored and the computed checksum of a whole frame; nil when the frame has none.
    public func checksums(_ frame: [UInt8]) -> (stored: Int, computed: Int)? {
        let c = checksum
        guard c.kind != .none, frame.count >= c.at + c.width, c.to <= frame.count else { return nil }
        let sum = frame[c.from..<c.to].reduce(0) { $0 + Int($1) }
        switch c.kind {
        case .sum8:
            return (Int(frame[c.at]), sum & 0xFF)
        case .sum16:
            let hi = Int(frame[c.at + (c.littleEndian ? 1 : 0)])
            let lo = Int(frame[c.at + (c.littleEndian ? 0 : 1)])
            return (hi << 8 | lo, sum & 0xFFFF)
        case .none:
            return nil
        }
    }

    /// The frame as input registers: register N is bytes 2N and 2N+1 (a last odd byte is the high byte).
    public static func registers(_ frame: [UInt8]) -> [UInt16] {
        stride(from: 0, to: frame.count, by: 2).map { i in
            UInt16(frame[i]) << 8 | (i + 1 < frame.count ? UInt16(frame[i + 1]) : 0)
        }
    }

    /// Registers a frame of `length` bytes shows.
    public var registerCount: Int { (length + 1) / 2 }
}

func hex<T: BinaryInteger>(_ value: T) -> String {
    let text = String(value, radix: 16, uppercase: true)
    return text.count % 2 == 1 ? "0" + text : text
}

/// Bytes as `42 4D E2`.
public func hexString(_ bytes: [UInt8]) -> String { bytes.map { hex($0) }.joined(separator: " ") }

/// Parses `42 4D E2 00 00 01 71` (spaces, `0x` prefixes and commas allowed); nil on anything else.
public func parseHexBytes(_ text: String) -> [UInt8]? {
    let cleaned = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" || $0 == "\t" })
    var out: [UInt8] = []
    for token in cleaned {
        var t = Substring(token)
        if t.hasPrefix("0x") || t.hasPrefix("0X") { t = t.dropFirst(2) }
        guard t.count == 2, let b = UInt8(t, radix: 16) else { return nil }
        out.append(b)
    }
    return out
}

extension FrameSpec {
    /// A whole frame carrying `registers` (input register N = bytes 2N, 2N+1), with the start bytes, length field,
    /// end bytes and checksum this spec asks for: what a simulated sensor sends.
    public func build(registers: [Int: UInt16]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        for (address, word) in registers where address >= 0 && address * 2 < length {
            bytes[address * 2] = UInt8(word >> 8)
            if address * 2 + 1 < length { bytes[address * 2 + 1] = UInt8(word & 0xFF) }
        }
        for (i, b) in start.enumerated() { bytes[i] = b }
        if let field = lengthField {
            bytes[field.offset] = UInt8((field.value >> 8) & 0xFF)
            bytes[field.offset + 1] = UInt8(field.value & 0xFF)
        }
        for (i, b) in end.enumerated() { bytes[length - end.count + i] = b }
        if let (_, computed) = checksums(bytes) {
            switch checksum.kind {
            case .sum8: bytes[checksum.at] = UInt8(computed & 0xFF)
            case .sum16:
                let hi = UInt8(computed >> 8)
                let lo = UInt8(computed & 0xFF)
                bytes[checksum.at] = checksum.littleEndian ? lo : hi
                bytes[checksum.at + 1] = checksum.littleEndian ? hi : lo
            case .none: break
            }
        }
        return bytes
    }
}
