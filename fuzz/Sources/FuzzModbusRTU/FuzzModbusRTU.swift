// Fuzzes a Modbus RTU read reply through the real receive path: the input's first byte picks the request (table
// and count), the second whether a correct CRC is appended, the rest is what the line carries. A libmodbus RTU context reads it from one end of a socketpair
// (CRC checked by libmodbus), `ModbusFrame` validates it, and the decoder interprets the words. Asserted: no crash,
// and a reply is accepted only if its first bytes are exactly the valid answer with a correct CRC (checked here
// independently of ModbusFrame).
import PantauCore
import PantauModbus

#if canImport(Glibc)
    import Glibc
#endif

let tables: [RegisterTable] = [.holding, .input, .coil, .discrete]

func crc16(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
    var crc: UInt16 = 0xFFFF
    for byte in bytes {
        crc ^= UInt16(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
    }
    return [UInt8(crc & 0xFF), UInt8(crc >> 8)]
}

/// The words a valid reply to (unit 1, `table`, 0+`count`) carries, or nil if `reply` does not start with one.
func expectedWords(_ reply: [UInt8], _ table: RegisterTable, _ count: Int) -> [UInt16]? {
    let byteCount = table.isBitTable ? (count + 7) / 8 : 2 * count
    let length = 3 + byteCount
    guard reply.count >= length + 2 else { return nil }
    guard Array(reply.prefix(3)) == [1, table.readFunctionCode, UInt8(byteCount)] else { return nil }
    guard Array(reply[length..<(length + 2)]) == crc16(reply[0..<length]) else { return nil }
    let data = Array(reply[3..<length])
    if table.isBitTable { return (0..<count).map { UInt16(data[$0 / 8] >> UInt8($0 % 8) & 1) } }
    return (0..<count).map { UInt16(data[2 * $0]) << 8 | UInt16(data[2 * $0 + 1]) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let table = tables[Int(input[0] & 3)]
    let count = table.isBitTable ? Int(input[0] >> 2) % 40 + 1 : Int(input[0] >> 2) % 16 + 1
    // The second byte's low bit appends the right CRC, so the fuzzer gets past libmodbus's CRC check to ours.
    var reply = Array(input.dropFirst(2).prefix(4096))
    if input[1] & 1 == 1 { reply += crc16(reply[...]) }

    var ends: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { return 0 }
    _ = reply.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
    shutdown(ends[1], Int32(SHUT_WR))
    defer { close(ends[1]) }

    guard let connection = try? ModbusConnection.adopting(descriptor: ends[0], tcp: false, bus: "fuzz") else {
        close(ends[0])
        return 0
    }
    defer { connection.close() }
    try? connection.setUnit(1)
    connection.setResponseTimeout(ms: 5)
    connection.setByteTimeout(ms: 5)

    let result = Result { () throws(ModbusError) -> [UInt16] in
        try connection.read(ReadRequest(table: table, address: 0, count: count))
    }
    switch result {
    case .success(let words):
        guard let expected = expectedWords(reply, table, count), expected == words else {
            fatalError("accepted an invalid reply as \(words): \(reply)")
        }
        if !table.isBitTable, [1, 2, 4].contains(words.count) {
            _ = RegisterDecoder.interpretations(words: words)
        }
    case .failure(let error):
        if error.class == .config && error.code != .illegalFunction && error.code != .illegalAddress
            && error.code != .illegalValue
        {
            fatalError("a reply became a configuration error: \(error)")
        }
    }
    return 0
}

// SwiftPM links an executable's `main` to `<target>_main`; hand it to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzModbusRTU_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
}
