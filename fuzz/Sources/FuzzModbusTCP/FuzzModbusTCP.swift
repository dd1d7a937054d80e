// Fuzzes a Modbus TCP read reply through the real receive path: the input's first byte picks the request (table
// and count), the rest is what the "device" sends. A libmodbus context reads it from one end of a socketpair,
// `ModbusFrame` validates it, and the decoder interprets the words. Asserted: no crash, and a reply is accepted
// only if its first bytes are exactly the valid answer (checked here independently of ModbusFrame).
import PantauCore
import PantauModbus

#if canImport(Glibc)
    import Glibc
#endif

let tables: [RegisterTable] = [.holding, .input, .coil, .discrete]

/// The words a valid reply to (transaction 1, unit 1, `table`, 0+`count`) carries, or nil if `reply` is not one.
func expectedWords(_ reply: [UInt8], _ table: RegisterTable, _ count: Int) -> [UInt16]? {
    let byteCount = table.isBitTable ? (count + 7) / 8 : 2 * count
    guard reply.count >= 9 + byteCount else { return nil }
    let header: [UInt8] = [0, 1, 0, 0, 0, UInt8(3 + byteCount), 1, table.readFunctionCode, UInt8(byteCount)]
    guard Array(reply.prefix(9)) == header else { return nil }
    let data = Array(reply[9..<(9 + byteCount)])
    if table.isBitTable { return (0..<count).map { UInt16(data[$0 / 8] >> UInt8($0 % 8) & 1) } }
    return (0..<count).map { UInt16(data[2 * $0]) << 8 | UInt16(data[2 * $0 + 1]) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let table = tables[Int(input[0] & 3)]
    let count = table.isBitTable ? Int(input[0] >> 2) % 40 + 1 : Int(input[0] >> 2) % 16 + 1
    // More than a socket buffer would block the writer; no valid reply is longer than 260 bytes anyway.
    let reply = Array(input.dropFirst().prefix(4096))

    var ends: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { return 0 }
    _ = reply.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
    // End of input: libmodbus sees the peer close instead of waiting out its timeouts.
    shutdown(ends[1], Int32(SHUT_WR))
    defer { close(ends[1]) }

    guard let connection = try? ModbusConnection.adopting(descriptor: ends[0], tcp: true, bus: "fuzz") else {
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
        // Whatever went wrong is an error of the link, never a value.
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

@_cdecl("FuzzModbusTCP_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
}
