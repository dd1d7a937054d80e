internal import CModbus
import PantauCore

#if canImport(Glibc)
    import Glibc
#endif

extension ModbusSimulator {
    /// Serves every unit as Modbus RTU over TCP on `host:port` (0 picks a free port), the way a DTU in transparent
    /// mode forwards an RS-485 line: RTU frames with CRC in the stream, no MBAP header. Returns the port bound.
    /// Requests are framed here; libmodbus's RTU backend writes the reply (with its CRC) to the client socket.
    @discardableResult
    public func serveRTUOverTCP(host: String = "127.0.0.1", port: Int) throws(ModbusError) -> Int {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw ModbusError(code: .invalidArgument, message: "'\(host)' is not an IPv4 address", bus: "simulator")
        }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw ModbusError(errno: errno, bus: "simulator") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 8) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else {
            let error = ModbusError(errno: errno, bus: "simulator")
            Glibc.close(listener)
            throw error
        }
        let chosen = Int(UInt16(bigEndian: address.sin_port))
        logger.info("simulator serving Modbus RTU over TCP", metadata: ["host": "\(host)", "port": "\(chosen)"])
        startThread { [self] in acceptLoop(listener: listener) { [self] in rtuOverTCPClient($0) } }
        return chosen
    }

    private func rtuOverTCPClient(_ socket: Int32) {
        // An RTU context that never opens its device: it only builds replies, written to the client socket.
        guard let ctx = modbus_new_rtu("/dev/null", 9600, CChar(UInt8(ascii: "N")), 8, 1) else {
            Glibc.close(socket)
            return
        }
        modbus_set_socket(ctx, socket)
        defer {
            Glibc.close(socket)
            modbus_free(ctx)
        }
        var framer = RTUFramer()
        var chunk = [UInt8](repeating: 0, count: 256)
        var idlePolls = 0
        while !isStopping {
            guard waitReadable(socket, timeoutMs: 100) else {
                // No silence marks frame ends on TCP; a second without bytes ends whatever partial frame is pending.
                idlePolls += 1
                if idlePolls >= 10 { framer.reset() }
                continue
            }
            idlePolls = 0
            let n = chunk.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            framer.append(chunk.prefix(n))
            answerFrames(&framer, ctx)
        }
    }
}
