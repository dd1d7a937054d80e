internal import CModbus
import Logging
import PantauCore

#if canImport(Glibc)
    import Glibc
#endif

/// One libmodbus master context (a serial port or a TCP connection). It owns the `modbus_t` and frees it on deinit.
/// Not thread safe, like the context itself: one thread uses it.
public final class ModbusConnection: ModbusTransport {
    private let context: OpaquePointer
    private let rs485: Bool
    private let isTCP: Bool
    private let logger: Logger
    /// The bus name, for messages.
    public let bus: String
    public private(set) var unit: Int?
    private var connected = false
    /// MBAP transaction id of the last TCP request; a reply must carry the same.
    private var transactionId: UInt16 = 0

    private init(context: OpaquePointer, bus: String, rs485: Bool, isTCP: Bool, logger: Logger) {
        self.context = context
        self.bus = bus
        self.rs485 = rs485
        self.isTCP = isTCP
        self.logger = logger
        // RECOVERY_LINK would reconnect in a loop inside the library call; recovery is the poller's job.
        modbus_set_error_recovery(context, MODBUS_ERROR_RECOVERY_NONE)
    }

    deinit {
        // Only a descriptor this context opened (or adopted) is closed: libmodbus keeps -1 when there is none.
        if connected { modbus_close(context) }
        modbus_free(context)
    }

    /// A context that talks over an already open descriptor (one end of a socketpair), which it then owns and
    /// closes: the seam for tests and fuzzing, with the real libmodbus receive path and the real validation.
    public static func adopting(
        descriptor: Int32, tcp: Bool, bus: String = "", logger: Logger = Logger(label: "pantau.modbus")
    ) throws(ModbusError) -> ModbusConnection {
        guard descriptor >= 0 else {
            throw ModbusError(code: .invalidArgument, message: "no descriptor to adopt", bus: bus)
        }
        let ctx: OpaquePointer
        if tcp {
            guard let c = modbus_new_tcp_pi("127.0.0.1", "502") else { throw ModbusError(errno: errno, bus: bus) }
            ctx = c
        } else {
            ctx = try newRTUContext(device: "/dev/null", serial: SerialSettings(baud: 9600), bus: bus)
        }
        let connection = ModbusConnection(context: ctx, bus: bus, rs485: false, isTCP: tcp, logger: logger)
        modbus_set_socket(ctx, descriptor)
        connection.connected = true
        return connection
    }

    /// Time allowed between two bytes of one reply (libmodbus default 500 ms).
    public func setByteTimeout(ms: Int) {
        let clamped = max(1, ms)
        modbus_set_byte_timeout(context, UInt32(clamped / 1000), UInt32((clamped % 1000) * 1000))
    }

    /// A Modbus TCP master for `host:port` (not connected yet). `host` may be a name or an IPv4/IPv6 address.
    public static func tcp(
        host: String, port: Int, bus: String = "", logger: Logger = Logger(label: "pantau.modbus")
    ) throws(ModbusError) -> ModbusConnection {
        guard (1...65535).contains(port) else {
            throw ModbusError(code: .invalidArgument, message: "TCP port \(port) is outside 1...65535", bus: bus)
        }
        // The protocol-independent variant resolves names; plain modbus_new_tcp accepts only dotted IPv4.
        guard let ctx = modbus_new_tcp_pi(host, String(port)) else {
            throw ModbusError(errno: errno, bus: bus)
        }
        return ModbusConnection(context: ctx, bus: bus, rs485: false, isTCP: true, logger: logger)
    }

    /// A Modbus RTU master on a serial device. Line settings libmodbus would silently change are rejected here.
    public static func rtu(
        device: String, serial: SerialSettings, rs485: Bool, bus: String = "",
        logger: Logger = Logger(label: "pantau.modbus")
    ) throws(ModbusError) -> ModbusConnection {
        let ctx = try newRTUContext(device: device, serial: serial, bus: bus)
        return ModbusConnection(context: ctx, bus: bus, rs485: rs485, isTCP: false, logger: logger)
    }

    public func connect() throws(ModbusError) {
        if connected { return }
        try call { modbus_connect(context) }
        connected = true
        guard rs485 else { return }
        // Only valid after connect (EBADF before, libmodbus #703); a pty or USB adapter has no TIOCSRS485.
        let rc = modbus_rtu_set_serial_mode(context, MODBUS_RTU_RS485)
        if rc < 0 {
            let error = ModbusError(errno: errno, bus: bus)
            logger.warning(
                "RS-485 mode not available on this port; continuing in RS-232 mode",
                metadata: ["bus": "\(bus)", "errno": "\(error.errno)"])
        }
    }

    public func close() {
        guard connected else { return }
        modbus_close(context)
        connected = false
    }

    public func setUnit(_ unit: Int) throws(ModbusError) {
        guard (0...255).contains(unit) else {
            throw ModbusError(code: .invalidArgument, message: "unit id \(unit) is outside 0...255", bus: bus)
        }
        try call { modbus_set_slave(context, Int32(unit)) }
        self.unit = unit
    }

    public func setResponseTimeout(ms: Int) {
        let clamped = max(1, ms)
        modbus_set_response_timeout(context, UInt32(clamped / 1000), UInt32((clamped % 1000) * 1000))
    }

    public func read(_ request: ReadRequest) throws(ModbusError) -> [UInt16] {
        if request.table.isBitTable {
            return try readBits(table: request.table, address: request.address, count: request.count)
                .map { $0 ? 1 : 0 }
        }
        return try readRegisters(table: request.table, address: request.address, count: request.count)
    }

    /// Reads holding (FC3) or input (FC4) registers.
    public func readRegisters(table: RegisterTable, address: Int, count: Int) throws(ModbusError) -> [UInt16] {
        guard !table.isBitTable, (1...125).contains(count), (0...65535).contains(address) else {
            throw invalid("read of \(count) registers at \(address) from \(table.rawValue)", table, address, count)
        }
        return try transaction(table, address, count)
    }

    /// Reads coils (FC1) or discrete inputs (FC2).
    public func readBits(table: RegisterTable, address: Int, count: Int) throws(ModbusError) -> [Bool] {
        guard table.isBitTable, (1...2000).contains(count), (0...65535).contains(address) else {
            throw invalid("read of \(count) bits at \(address) from \(table.rawValue)", table, address, count)
        }
        return try transaction(table, address, count).map { $0 != 0 }
    }

    /// One read: the request goes out, libmodbus receives the reply (timeouts, CRC), and `ModbusFrame` checks
    /// every field of it against the request before a value is taken from it.
    private func transaction(_ table: RegisterTable, _ address: Int, _ count: Int) throws(ModbusError) -> [UInt16] {
        guard let unit else {
            throw ModbusError(code: .invalidArgument, message: "no unit id set before a read", bus: bus)
        }
        let request = ModbusFrame.Request(
            unit: UInt8(unit), table: table, address: UInt16(address), count: UInt16(count))
        let framing: ModbusFrame.Framing
        if isTCP {
            // A late reply to an earlier request carries an older transaction id and is refused as bad data.
            transactionId &+= 1
            framing = .tcp(transactionId: transactionId)
            try sendTCP(ModbusFrame.tcpRequest(request, transactionId: transactionId), table, address, count)
        } else {
            framing = .rtu
            let raw = [request.unit] + request.pdu
            try call(table, address, count) {
                raw.withUnsafeBufferPointer { modbus_send_raw_request(context, $0.baseAddress, Int32($0.count)) }
            }
        }
        // MODBUS_TCP_MAX_ADU_LENGTH: the largest frame libmodbus will store.
        var reply = [UInt8](repeating: 0, count: 260)
        let length = try reply.withUnsafeMutableBufferPointer { (buffer) throws(ModbusError) -> Int32 in
            try call(table, address, count) { modbus_receive_confirmation(context, buffer.baseAddress) }
        }
        switch ModbusFrame.decode(reply: Array(reply.prefix(Int(length))), for: request, framing: framing) {
        case .success(let words): return words
        case .failure(var error):
            error.bus = bus
            error.unit = unit
            error.table = table
            error.address = address
            error.count = count
            throw error
        }
    }

    /// Writes a whole TCP request on the connection's socket (libmodbus's raw send would always use
    /// transaction id 0, so a late reply could not be told from the awaited one).
    private func sendTCP(_ frame: [UInt8], _ table: RegisterTable, _ address: Int, _ count: Int) throws(ModbusError) {
        let fd = modbus_get_socket(context)
        guard fd >= 0 else {
            throw ModbusError(errno: EBADF, bus: bus, unit: unit, table: table, address: address, count: count)
        }
        var sent = 0
        while sent < frame.count {
            let n = frame.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n >= 0 {
                sent += n
                continue
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                var waiter = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&waiter, 1, 1000) > 0 { continue }
            }
            throw ModbusError(errno: code, bus: bus, unit: unit, table: table, address: address, count: count)
        }
    }

    /// Writes one holding register (FC6).
    public func writeRegister(address: Int, value: UInt16) throws(ModbusError) {
        try call(.holding, address, 1) { modbus_write_register(context, Int32(address), value) }
    }

    /// Writes consecutive holding registers (FC16), at most 123.
    public func writeRegisters(address: Int, values: [UInt16]) throws(ModbusError) {
        guard (1...123).contains(values.count) else {
            throw invalid("write of \(values.count) registers", .holding, address, values.count)
        }
        try values.withUnsafeBufferPointer { (buffer) throws(ModbusError) in
            _ = try call(.holding, address, values.count) {
                modbus_write_registers(context, Int32(address), Int32(values.count), buffer.baseAddress)
            }
        }
    }

    /// Writes one coil (FC5).
    public func writeCoil(address: Int, on: Bool) throws(ModbusError) {
        try call(.coil, address, 1) { modbus_write_bit(context, Int32(address), on ? 1 : 0) }
    }

    /// Writes consecutive coils (FC15), at most 1968.
    public func writeCoils(address: Int, values: [Bool]) throws(ModbusError) {
        guard (1...1968).contains(values.count) else {
            throw invalid("write of \(values.count) coils", .coil, address, values.count)
        }
        let bytes = values.map { UInt8($0 ? 1 : 0) }
        try bytes.withUnsafeBufferPointer { (buffer) throws(ModbusError) in
            _ = try call(.coil, address, values.count) {
                modbus_write_bits(context, Int32(address), Int32(values.count), buffer.baseAddress)
            }
        }
    }

    public func flush() {
        guard connected else { return }
        _ = modbus_flush(context)
    }

    /// The one funnel for C calls: reads errno right after a failing call and throws it with the place.
    @discardableResult
    private func call(
        _ table: RegisterTable? = nil, _ address: Int? = nil, _ count: Int? = nil, _ body: () -> Int32
    ) throws(ModbusError) -> Int32 {
        let rc = body()
        guard rc < 0 else { return rc }
        let code = errno
        throw ModbusError(errno: code, bus: bus, unit: unit, table: table, address: address, count: count)
    }

    private func invalid(_ what: String, _ table: RegisterTable, _ address: Int, _ count: Int) -> ModbusError {
        ModbusError(
            code: .invalidArgument, message: "invalid \(what)", bus: bus, unit: unit, table: table,
            address: address, count: count)
    }
}

extension ModbusConnection {
    /// Baud rates libmodbus 3.1.6 maps to a termios speed on Linux; any other silently becomes 9600.
    public static let supportedBaudRates: Set<Int> = [
        110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000,
        921600, 1_000_000, 1_152_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 3_500_000, 4_000_000,
    ]

    /// Checks line settings before libmodbus sees them; nil when they are usable.
    public static func validate(serial: SerialSettings, bus: String = "") -> ModbusError? {
        if !supportedBaudRates.contains(serial.baud) {
            let known = supportedBaudRates.sorted().map(String.init).joined(separator: ", ")
            return ModbusError(
                code: .invalidArgument,
                message: "baud \(serial.baud) is not supported (libmodbus would silently use 9600); "
                    + "use one of \(known)",
                bus: bus)
        }
        if !(5...8).contains(serial.dataBits) {
            return ModbusError(code: .invalidArgument, message: "data bits \(serial.dataBits) not in 5...8", bus: bus)
        }
        if !(1...2).contains(serial.stopBits) {
            return ModbusError(code: .invalidArgument, message: "stop bits \(serial.stopBits) not 1 or 2", bus: bus)
        }
        return nil
    }

    /// A new RTU context, shared by the master and the simulator's server side.
    static func newRTUContext(
        device: String, serial: SerialSettings, bus: String
    ) throws(ModbusError) -> OpaquePointer {
        if let problem = validate(serial: serial, bus: bus) { throw problem }
        let parity: CChar
        switch serial.parity {
        case .none: parity = CChar(UInt8(ascii: "N"))
        case .even: parity = CChar(UInt8(ascii: "E"))
        case .odd: parity = CChar(UInt8(ascii: "O"))
        }
        guard
            let ctx = modbus_new_rtu(
                device, Int32(serial.baud), parity, Int32(serial.dataBits),
                Int32(serial.stopBits))
        else {
            throw ModbusError(errno: errno, bus: bus)
        }
        return ctx
    }
}
