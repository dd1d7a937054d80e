import PantauCore

/// Modbus RTU application data units as they travel on a serial line or, unchanged, through a DTU's TCP stream:
/// unit id, PDU, CRC-16/MODBUS low byte first (Modbus over Serial Line V1.02 §2.5.1.2, §6.2.2).
public enum RTUFraming {
    /// The Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF); sent low byte first.
    public static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        RTUFramer.crc16(bytes)
    }

    /// `unit`, `pdu` and the CRC.
    public static func frame(unit: Int, pdu: [UInt8]) -> [UInt8] {
        var out = [UInt8(truncatingIfNeeded: unit)] + pdu
        let crc = crc16(out)
        out.append(UInt8(crc & 0xFF))
        out.append(UInt8(crc >> 8))
        return out
    }

    static func be16(_ value: Int) -> [UInt8] { [UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }

    /// The function code reading a table: FC1 coils, FC2 discrete inputs, FC3 holding, FC4 input registers.
    public static func readFunction(_ table: RegisterTable) -> UInt8 {
        switch table {
        case .coil: return 1
        case .discrete: return 2
        case .holding: return 3
        case .input: return 4
        }
    }

    /// A read request and the reply it expects.
    public static func read(unit: Int, _ request: ReadRequest) -> Transaction {
        let function = readFunction(request.table)
        let pdu = [function] + be16(request.address) + be16(request.count)
        let dataBytes = request.table.isBitTable ? (request.count + 7) / 8 : 2 * request.count
        return Transaction(
            unit: unit, function: function, request: frame(unit: unit, pdu: pdu), reply: .data(dataBytes))
    }

    /// FC5, FC6: the reply echoes the request.
    public static func writeSingle(unit: Int, function: UInt8, address: Int, value: UInt16) -> Transaction {
        let pdu = [function] + be16(address) + be16(Int(value))
        let frame = frame(unit: unit, pdu: pdu)
        return Transaction(unit: unit, function: function, request: frame, reply: .echo(Array(frame[2..<6])))
    }

    /// FC15, FC16: the reply repeats address and quantity.
    public static func writeMultiple(unit: Int, function: UInt8, address: Int, count: Int, data: [UInt8])
        -> Transaction
    {
        let head = be16(address) + be16(count)
        let pdu = [function] + head + [UInt8(data.count)] + data
        return Transaction(unit: unit, function: function, request: frame(unit: unit, pdu: pdu), reply: .echo(head))
    }

    /// One request and what its reply must look like.
    public struct Transaction: Sendable, Hashable {
        public enum Reply: Sendable, Hashable {
            /// FC1-4: a byte count, then exactly that many data bytes.
            case data(Int)
            /// FC5/6/15/16: four bytes echoing the request (address and value or quantity).
            case echo([UInt8])
        }

        public var unit: Int
        public var function: UInt8
        public var request: [UInt8]
        public var reply: Reply

        /// The length of a good reply frame.
        public var replyLength: Int {
            switch reply {
            case .data(let n): return 5 + n
            case .echo: return 8
            }
        }
    }

    /// What the bytes received so far say about the reply.
    public enum Progress: Sendable, Hashable {
        /// The reply is not complete: at least this many bytes in all are needed.
        case needs(Int)
        /// The frame is complete and checks out: the data bytes (FC1-4) or the echo (writes).
        case done([UInt8])
        /// The frame does not check out.
        case failed(ModbusError.Code, errno: Int32, String)
    }

    /// Checks a reply as far as it has arrived: unit, function, byte count, exception, CRC, all before any decoding.
    public static func check(_ bytes: [UInt8], for t: Transaction) -> Progress {
        guard bytes.count >= 2 else { return .needs(2) }
        if Int(bytes[0]) != t.unit {
            return .failed(.badData, errno: ModbusError.badSlave, "reply from unit \(bytes[0]), expected \(t.unit)")
        }
        let function = bytes[1]
        if function == t.function | 0x80 {
            guard bytes.count >= 5 else { return .needs(5) }
            guard crcMatches(bytes.prefix(5)) else { return crcFailure(bytes.prefix(5)) }
            let code = bytes[2]
            let known: Set<UInt8> = [1, 2, 3, 4, 5, 6, 7, 8, 10, 11]
            guard known.contains(code) else {
                return .failed(.badData, errno: ModbusError.unknownException, "unknown exception code \(code)")
            }
            let errno = ModbusError.noBase + Int32(code)
            return .failed(ModbusError.classify(errno: errno).0, errno: errno, ModbusError.classify(errno: errno).1)
        }
        guard function == t.function else {
            return .failed(
                .badData, errno: ModbusError.badData, "reply has function \(function), expected \(t.function)")
        }
        switch t.reply {
        case .data(let n):
            guard bytes.count >= 3 else { return .needs(3) }
            guard Int(bytes[2]) == n else {
                return .failed(.badData, errno: ModbusError.badData, "reply byte count \(bytes[2]), expected \(n)")
            }
        case .echo(let echo):
            guard bytes.count >= 6 else { return .needs(6) }
            guard Array(bytes[2..<6]) == echo else {
                return .failed(.badData, errno: ModbusError.badData, "write reply does not echo the request")
            }
        }
        let length = t.replyLength
        guard bytes.count >= length else { return .needs(length) }
        let frame = bytes.prefix(length)
        guard crcMatches(frame) else { return crcFailure(frame) }
        switch t.reply {
        case .data: return .done(Array(frame[3..<(length - 2)]))
        case .echo: return .done(Array(frame[2..<6]))
        }
    }

    static func crcMatches(_ frame: ArraySlice<UInt8>) -> Bool {
        guard frame.count >= 4 else { return false }
        let end = frame.endIndex
        return crc16(frame.dropLast(2)) == UInt16(frame[end - 2]) | UInt16(frame[end - 1]) << 8
    }

    private static func crcFailure(_ frame: ArraySlice<UInt8>) -> Progress {
        let (code, message) = ModbusError.classify(errno: ModbusError.badCRC)
        return .failed(code, errno: ModbusError.badCRC, message + " (\(frame.count)-byte frame)")
    }

    /// Register words from FC3/FC4 data bytes (big endian).
    public static func words(_ data: [UInt8]) -> [UInt16] {
        stride(from: 0, to: data.count - 1, by: 2).map { UInt16(data[$0]) << 8 | UInt16(data[$0 + 1]) }
    }

    /// Bits from FC1/FC2 data bytes, least significant bit first, `count` of them.
    public static func bits(_ data: [UInt8], count: Int) -> [Bool] {
        (0..<count).map { data[$0 / 8] & (1 << UInt8($0 % 8)) != 0 }
    }
}
