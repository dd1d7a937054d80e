import PantauCore
import Testing

@testable import PantauModbus

#if canImport(Glibc)
    import Glibc
#endif

/// A real libmodbus context reading one end of a socketpair; the test plays the device on the other end.
final class SocketPeer {
    let connection: ModbusConnection
    let device: Int32

    init(tcp: Bool) throws {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else {
            throw ModbusError(code: .connection, message: "socketpair failed")
        }
        device = ends[1]
        connection = try ModbusConnection.adopting(descriptor: ends[0], tcp: tcp, bus: "hostile")
        try connection.setUnit(1)
        connection.setResponseTimeout(ms: 100)
        connection.setByteTimeout(ms: 50)
    }

    deinit {
        connection.close()
        close(device)
    }

    /// Queues `reply` as the device's answer, then reads holding 0+2 (or `table`) from unit 1.
    func read(_ reply: [UInt8], table: RegisterTable = .holding, count: Int = 2) -> Result<[UInt16], ModbusError> {
        _ = reply.withUnsafeBytes { write(device, $0.baseAddress, $0.count) }
        do {
            return .success(try connection.read(ReadRequest(table: table, address: 0, count: count)))
        } catch {
            return .failure(error)
        }
    }

    /// The request the master wrote, as the device received it.
    func request() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 300)
        let n = recv(device, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        return n > 0 ? Array(buffer.prefix(n)) : []
    }
}

/// CRC-16/MODBUS, to build RTU replies by hand.
func crc16(_ bytes: [UInt8]) -> [UInt8] {
    var crc: UInt16 = 0xFFFF
    for byte in bytes {
        crc ^= UInt16(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
    }
    return [UInt8(crc & 0xFF), UInt8(crc >> 8)]
}

func rtu(_ frame: [UInt8]) -> [UInt8] { frame + crc16(frame) }

@Suite(.serialized) struct HostileReplyTests {
    /// MBAP (transaction 1, protocol 0, length), unit, PDU.
    static func mbap(tid: UInt16 = 1, proto: UInt16 = 0, length: Int? = nil, unit: UInt8 = 1, _ pdu: [UInt8])
        -> [UInt8]
    {
        let len = length ?? pdu.count + 1
        return [
            UInt8(tid >> 8), UInt8(tid & 0xFF), UInt8(proto >> 8), UInt8(proto & 0xFF), UInt8(len >> 8),
            UInt8(len & 0xFF), unit,
        ] + pdu
    }

    static let goodPDU: [UInt8] = [3, 4, 0x00, 0x0A, 0x01, 0x02]

    @Test func aValidTCPReplyIsDecodedAndTheRequestCarriesItsTransactionId() throws {
        let peer = try SocketPeer(tcp: true)
        #expect(try peer.read(Self.mbap(Self.goodPDU)).get() == [10, 0x0102])
        #expect(peer.request() == [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2])
        #expect(try peer.read(Self.mbap(tid: 2, Self.goodPDU)).get() == [10, 0x0102])
    }

    static let invalidTCP: [(String, [UInt8])] = [
        ("MBAP length 65535", mbap(length: 65535, goodPDU)),
        ("MBAP length too short", mbap(length: 3, goodPDU)),
        ("wrong transaction id", mbap(tid: 9, goodPDU)),
        ("protocol id 1", mbap(proto: 1, goodPDU)),
        ("protocol id 0x0100", mbap(proto: 0x0100, goodPDU)),
        ("wrong unit", mbap(unit: 7, goodPDU)),
        ("wrong function", mbap([4, 4, 0, 10, 1, 2])),
        ("byte count too small", mbap([3, 2, 0, 10])),
        ("byte count too large", mbap([3, 6, 0, 10, 1, 2, 3, 4])),
        ("unknown exception", mbap([0x83, 0x20])),
        ("exception of another function", mbap([0x84, 0x02])),
    ]

    @Test(arguments: invalidTCP.indices)
    func anInvalidTCPReplyIsBadDataNeverRegisters(index: Int) throws {
        let (name, reply) = Self.invalidTCP[index]
        let peer = try SocketPeer(tcp: true)
        let result = peer.read(reply)
        guard case .failure(let error) = result else {
            Issue.record("\(name): accepted as \(result)")
            return
        }
        #expect(error.code == .badData, "\(name): \(error)")
        #expect(error.class == .link, "\(name)")
        #expect(error.description.contains("bus hostile unit 1 holding 0+2"), "\(name): \(error)")
    }

    @Test func theMBAPLengthIsNamedInTheError() throws {
        let peer = try SocketPeer(tcp: true)
        let error = try #require(peer.read(Self.mbap(length: 65535, Self.goodPDU)).failureValue)
        #expect(error.code == .badData)
        #expect(error.message.contains("MBAP length field 65535 does not match the 7 bytes"))
    }

    @Test func aTruncatedTCPReplyTimesOut() throws {
        let peer = try SocketPeer(tcp: true)
        let error = try #require(peer.read(Array(Self.mbap(Self.goodPDU).prefix(10))).failureValue)
        #expect(error.code == .timeout)
    }

    @Test func aTCPExceptionReplyKeepsItsMeaning() throws {
        let peer = try SocketPeer(tcp: true)
        let error = try #require(peer.read(Self.mbap([0x83, 0x02])).failureValue)
        #expect(error.code == .illegalAddress)
    }

    @Test func bitsAreUnpackedLowBitFirst() throws {
        let peer = try SocketPeer(tcp: true)
        #expect(
            try peer.read(Self.mbap([1, 2, 0b1000_0101, 0b1]), table: .coil, count: 9).get()
                == [1, 0, 1, 0, 0, 0, 0, 1, 1])
    }

    @Test func aValidRTUReplyIsDecoded() throws {
        let peer = try SocketPeer(tcp: false)
        #expect(try peer.read(rtu([1] + Self.goodPDU)).get() == [10, 0x0102])
        #expect(peer.request() == rtu([1, 3, 0, 0, 0, 2]))
    }

    static let invalidRTU: [(String, [UInt8])] = [
        ("another unit", rtu([7] + goodPDU)),
        ("wrong function", rtu([1, 4, 4, 0, 10, 1, 2])),
        ("byte count too small", rtu([1, 3, 2, 0, 10])),
        ("bad CRC", [1] + goodPDU + [0, 0]),
        ("unknown exception", rtu([1, 0x83, 0x20])),
    ]

    @Test(arguments: invalidRTU.indices)
    func anInvalidRTUReplyIsNeverRegisters(index: Int) throws {
        let (name, reply) = Self.invalidRTU[index]
        let peer = try SocketPeer(tcp: false)
        let result = peer.read(reply)
        guard case .failure(let error) = result else {
            Issue.record("\(name): accepted as \(result)")
            return
        }
        #expect(error.class == .link, "\(name): \(error)")
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
