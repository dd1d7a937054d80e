import PantauCore

/// Checks a read reply against its request before anything is decoded.
///
/// libmodbus 3.1.6 frames a reply by its function code alone: it never looks at the MBAP length field, does not
/// check the unit id of a TCP reply, and checks the function and byte count only when the lengths it computed
/// agree. So a reply with an MBAP length of 65535, another unit's reply, or a stray frame could come out as good
/// registers. The connection sends the request and lets libmodbus receive the reply (timeouts, CRC), then every
/// field of the reply is checked here against what was asked.
public enum ModbusFrame {
    /// How the bytes are framed on the wire.
    public enum Framing: Sendable, Hashable {
        /// MBAP header: transaction id, protocol id 0, length of what follows, unit id.
        case tcp(transactionId: UInt16)
        /// Unit id, PDU, CRC (the CRC was checked by libmodbus).
        case rtu
    }

    /// One read request: unit, table (function code 1-4), first address and count.
    public struct Request: Sendable, Hashable {
        public var unit: UInt8
        public var table: RegisterTable
        public var address: UInt16
        public var count: UInt16

        public init(unit: UInt8, table: RegisterTable, address: UInt16, count: UInt16) {
            self.unit = unit
            self.table = table
            self.address = address
            self.count = count
        }

        public var function: UInt8 { table.readFunctionCode }

        /// Data bytes a good reply carries: 2 per register, 1 per 8 bits.
        public var expectedByteCount: Int {
            table.isBitTable ? (Int(count) + 7) / 8 : 2 * Int(count)
        }

        /// Function code, address and count, big-endian.
        public var pdu: [UInt8] {
            [function, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)]
        }
    }

    /// The MBAP header and PDU of a TCP request.
    public static func tcpRequest(_ request: Request, transactionId: UInt16) -> [UInt8] {
        let pdu = request.pdu
        let length = UInt16(pdu.count + 1)
        return [
            UInt8(transactionId >> 8), UInt8(transactionId & 0xFF), 0, 0, UInt8(length >> 8), UInt8(length & 0xFF),
            request.unit,
        ] + pdu
    }

    /// The registers (or 0/1 per bit) of a reply, or why it is not a valid answer to `request`.
    public static func decode(
        reply: [UInt8], for request: Request, framing: Framing
    ) -> Result<[UInt16], ModbusError> {
        let headerLength: Int
        let trailerLength: Int
        switch framing {
        case .tcp(let transactionId):
            headerLength = 7
            trailerLength = 0
            guard reply.count >= 9 else { return bad("a \(reply.count)-byte reply is shorter than any valid one") }
            let tid = UInt16(reply[0]) << 8 | UInt16(reply[1])
            guard tid == transactionId else {
                return bad("transaction id \(tid) in the reply, \(transactionId) expected (a late or foreign reply)")
            }
            let protocolId = UInt16(reply[2]) << 8 | UInt16(reply[3])
            guard protocolId == 0 else { return bad("protocol id \(protocolId) in the MBAP header, 0 expected") }
            let length = Int(reply[4]) << 8 | Int(reply[5])
            guard length == reply.count - 6 else {
                return bad("MBAP length field \(length) does not match the \(reply.count - 6) bytes of the reply")
            }
        case .rtu:
            headerLength = 1
            trailerLength = 2
            guard reply.count >= 5 else {
                return bad("a \(reply.count)-byte reply is shorter than any valid one (or came from another unit)")
            }
        }
        let unit = reply[headerLength - 1]
        guard unit == request.unit else { return bad("reply from unit \(unit), unit \(request.unit) was asked") }
        let pdu = reply[headerLength..<(reply.count - trailerLength)]
        let function = pdu[pdu.startIndex]
        if function == request.function | 0x80 {
            guard pdu.count == 2 else { return bad("exception reply of \(pdu.count) bytes, 2 expected") }
            let exception = Int32(pdu[pdu.startIndex + 1])
            guard (1...11).contains(exception), exception != 9 else {
                return bad("unknown exception code \(exception)")
            }
            return .failure(ModbusError(errno: ModbusError.noBase + exception, bus: ""))
        }
        guard function == request.function else {
            return bad("function \(function) in the reply, \(request.function) was asked")
        }
        let byteCount = Int(pdu[pdu.startIndex + 1])
        guard byteCount == request.expectedByteCount else {
            return bad("byte count \(byteCount) in the reply, \(request.expectedByteCount) expected")
        }
        guard pdu.count == 2 + byteCount else {
            return bad("\(pdu.count - 2) data bytes in the reply, its byte count says \(byteCount)")
        }
        let data = Array(pdu.dropFirst(2))
        if request.table.isBitTable {
            let bits = (0..<Int(request.count)).map { UInt16((data[$0 / 8] >> UInt8($0 % 8)) & 1) }
            return .success(bits)
        }
        return .success((0..<Int(request.count)).map { UInt16(data[2 * $0]) << 8 | UInt16(data[2 * $0 + 1]) })
    }

    private static func bad(_ what: String) -> Result<[UInt16], ModbusError> {
        .failure(ModbusError(code: .badData, errno: ModbusError.badData, message: "invalid reply: \(what)"))
    }
}
