import PantauCore
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// A Modbus RTU master over a TCP stream, as serial device servers and 4G DTUs in transparent mode forward it:
/// plain RTU frames with CRC, no MBAP header, no transaction id. libmodbus has no such backend, so the framing is
/// done here (`RTUFraming`) and only the socket is the system's.
///
/// There is no silence on a TCP stream to end a frame, so a reply is read to the length its function code gives,
/// and every part is checked (unit, function, byte count, exception, CRC) before any data is returned. Bytes
/// waiting before a request (a late reply to an earlier, timed-out one) are discarded, and after
/// `reopenAfterFailures` transactions in a row without a good reply the connection is reopened, since DTUs and
/// NAT boxes drop idle connections without a FIN. Not thread safe: the bus thread owns it.
public final class RTUOverTCPTransport: ModbusMaster {
    /// Opens the stream and returns its file descriptor (a connected TCP socket; a socketpair in tests).
    public typealias Connector = () throws(ModbusError) -> Int32

    public let bus: String
    private let connector: Connector
    private var fd: Int32 = -1
    public private(set) var unit: Int?
    private var responseTimeoutMs = 500
    /// How long to wait for the rest of a reply once it has begun (libmodbus's default byte timeout).
    public var byteTimeoutMs = 500
    /// Transactions in a row without a good reply (timeouts, garbage) before the connection is reopened.
    public var reopenAfterFailures = 3
    private var failuresInARow = 0
    private let clock = SystemClock()
    /// Connections opened so far.
    public private(set) var connects = 0
    /// Stray bytes thrown away: late replies, the rest of a garbage frame.
    public private(set) var discardedBytes = 0

    /// A master for a DTU at `settings.host:settings.port`.
    public convenience init(settings: RTUOverTCPSettings, bus: String, connectTimeoutMs: Int = 3000) {
        let host = settings.host
        let port = settings.port
        self.init(bus: bus) { () throws(ModbusError) -> Int32 in
            try Self.connectTCP(host: host, port: port, timeoutMs: connectTimeoutMs, bus: bus)
        }
    }

    public init(bus: String, connector: @escaping Connector) {
        self.bus = bus
        self.connector = connector
    }

    deinit { close() }

    public var isConnected: Bool { fd >= 0 }

    public func connect() throws(ModbusError) {
        if fd >= 0 { return }
        fd = try connector()
        connects += 1
        failuresInARow = 0
    }

    public func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }

    public func setUnit(_ unit: Int) throws(ModbusError) {
        guard (0...255).contains(unit) else {
            throw ModbusError(code: .invalidArgument, message: "unit id \(unit) is outside 0...255", bus: bus)
        }
        self.unit = unit
    }

    public func setResponseTimeout(ms: Int) { responseTimeoutMs = max(1, ms) }

    public func read(_ request: ReadRequest) throws(ModbusError) -> [UInt16] {
        let limit = request.table.isBitTable ? 2000 : 125
        guard (1...limit).contains(request.count), (0...65535).contains(request.address) else {
            throw ModbusError(
                code: .invalidArgument, message: "invalid read of \(request.count) at \(request.address)", bus: bus,
                unit: unit, table: request.table, address: request.address, count: request.count)
        }
        let unit = try currentUnit()
        let data = try run(RTUFraming.read(unit: unit, request), request.table, request.address, request.count)
        if request.table.isBitTable {
            return RTUFraming.bits(data, count: request.count).map { $0 ? 1 : 0 }
        }
        return RTUFraming.words(data)
    }

    public func writeRegister(address: Int, value: UInt16) throws(ModbusError) {
        let t = RTUFraming.writeSingle(unit: try currentUnit(), function: 6, address: address, value: value)
        _ = try run(t, .holding, address, 1)
    }

    public func writeRegisters(address: Int, values: [UInt16]) throws(ModbusError) {
        guard (1...123).contains(values.count) else {
            throw ModbusError(code: .invalidArgument, message: "invalid write of \(values.count) registers", bus: bus)
        }
        let data = values.flatMap { RTUFraming.be16(Int($0)) }
        let t = RTUFraming.writeMultiple(
            unit: try currentUnit(), function: 16, address: address, count: values.count, data: data)
        _ = try run(t, .holding, address, values.count)
    }

    public func writeCoil(address: Int, on: Bool) throws(ModbusError) {
        let t = RTUFraming.writeSingle(unit: try currentUnit(), function: 5, address: address, value: on ? 0xFF00 : 0)
        _ = try run(t, .coil, address, 1)
    }

    public func writeCoils(address: Int, values: [Bool]) throws(ModbusError) {
        guard (1...1968).contains(values.count) else {
            throw ModbusError(code: .invalidArgument, message: "invalid write of \(values.count) coils", bus: bus)
        }
        var data = [UInt8](repeating: 0, count: (values.count + 7) / 8)
        for (i, on) in values.enumerated() where on { data[i / 8] |= 1 << UInt8(i % 8) }
        let t = RTUFraming.writeMultiple(
            unit: try currentUnit(), function: 15, address: address, count: values.count, data: data)
        _ = try run(t, .coil, address, values.count)
    }

    /// Throws away whatever has arrived and not been asked for.
    public func flush() { drain(quietMs: 0) }

    private func currentUnit() throws(ModbusError) -> Int {
        guard let unit else {
            throw ModbusError(code: .invalidArgument, message: "no unit id set", bus: bus)
        }
        return unit
    }

    /// One transaction: send the request, read and check the reply; the checked data bytes (or write echo).
    private func run(
        _ t: RTUFraming.Transaction, _ table: RegisterTable, _ address: Int, _ count: Int
    ) throws(ModbusError) -> [UInt8] {
        func failure(_ code: ModbusError.Code, _ errno: Int32, _ message: String) -> ModbusError {
            ModbusError(
                code: code, errno: errno, message: message, bus: bus, unit: t.unit, table: table, address: address,
                count: count)
        }
        guard fd >= 0 else { throw failure(.connection, EBADF, "not connected to the DTU") }
        if failuresInARow >= reopenAfterFailures {
            // A connection a NAT box or the DTU has silently dropped only ever times out: open a fresh one.
            close()
            do { try connect() } catch { throw failure(.connection, error.errno, error.message) }
        }
        drain(quietMs: 0)
        try send(t.request, failure)
        var buffer: [UInt8] = []
        var deadline = clock.monotonicNanos() + UInt64(responseTimeoutMs) * 1_000_000
        while true {
            switch RTUFraming.check(buffer, for: t) {
            case .done(let data):
                failuresInARow = 0
                return data
            case .failed(let code, let errno, let message):
                let error = failure(code, errno, message)
                if error.class == .link {
                    failuresInARow += 1
                    // The rest of a garbage frame would be read as the start of the next reply.
                    drain(quietMs: 20)
                } else {
                    failuresInARow = 0  // an exception reply is a good answer from a live device
                }
                throw error
            case .needs(let total):
                let now = clock.monotonicNanos()
                let waitMs = now >= deadline ? 0 : Int32(min(Int64(Int32.max), Int64((deadline - now) / 1_000_000) + 1))
                var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = waitMs > 0 ? poll(&entry, 1, waitMs) : 0
                if ready < 0 && errno == EINTR { continue }
                guard ready > 0 else {
                    failuresInARow += 1
                    let (_, text) = ModbusError.classify(errno: ETIMEDOUT)
                    let detail =
                        buffer.isEmpty ? text : "truncated reply: \(buffer.count) of \(total)+ bytes, then silence"
                    throw failure(.timeout, ETIMEDOUT, detail)
                }
                var chunk = [UInt8](repeating: 0, count: max(1, total - buffer.count))
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n == 0 {
                    close()
                    throw failure(.connection, ECONNRESET, "the DTU closed the connection")
                }
                if n < 0 {
                    let code = errno
                    if code == EAGAIN || code == EINTR { continue }
                    close()
                    throw ModbusError(errno: code, bus: bus, unit: t.unit, table: table, address: address, count: count)
                }
                buffer.append(contentsOf: chunk.prefix(n))
                deadline = clock.monotonicNanos() + UInt64(byteTimeoutMs) * 1_000_000
            }
        }
    }

    private func send(_ bytes: [UInt8], _ failure: (ModbusError.Code, Int32, String) -> ModbusError) throws(ModbusError)
    {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN {
                    var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    if poll(&entry, 1, Int32(responseTimeoutMs)) > 0 { continue }
                    throw failure(.timeout, ETIMEDOUT, "the DTU does not take the request (send buffer full)")
                }
                close()
                let (kind, text) = ModbusError.classify(errno: code)
                throw failure(kind == .other ? .connection : kind, code, text)
            }
            sent += n
        }
    }

    /// Reads and discards until the stream has been quiet for `quietMs`; an end of stream closes it.
    private func drain(quietMs: Int32) {
        var scratch = [UInt8](repeating: 0, count: 512)
        while fd >= 0 {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, quietMs) > 0 else { return }
            let n = scratch.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 {
                close()
                return
            }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                close()
                return
            }
            discardedBytes += n
        }
    }
}

extension RTUOverTCPTransport {
    /// A non-blocking TCP connection to `host:port` (a name or an address), bounded by `timeoutMs`, with
    /// TCP_NODELAY (requests are small) and keepalive.
    public static func connectTCP(host: String, port: Int, timeoutMs: Int, bus: String) throws(ModbusError) -> Int32 {
        guard (1...65535).contains(port) else {
            throw ModbusError(code: .invalidArgument, message: "TCP port \(port) is outside 1...65535", bus: bus)
        }
        let addresses: [ResolvedAddress]
        switch TCPConnect.resolve(host: host, port: port) {
        case .success(let found): addresses = found
        case .failure(let error):
            throw ModbusError(code: .connection, message: "cannot resolve DTU host \(host): \(error.reason)", bus: bus)
        }
        var lastErrno: Int32 = ECONNREFUSED
        for address in addresses {
            switch TCPConnect.connect(address, timeoutMs: timeoutMs) {
            case .success(let fd):
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            case .failure(let error):
                lastErrno = error.errno
            }
        }
        if lastErrno == ETIMEDOUT {
            throw ModbusError(
                code: .connection, errno: ETIMEDOUT,
                message: "no TCP connection to the DTU at \(host):\(port) within \(timeoutMs) ms", bus: bus)
        }
        var error = ModbusError(errno: lastErrno, bus: bus)
        if error.code != .connection { error.code = .connection }
        error.message = "DTU \(host):\(port): " + error.message
        throw error
    }
}
