internal import CModbus
import PantauCore

#if canImport(Glibc)
    import Glibc
#endif

/// A libmodbus context handed to the one thread that will use it.
private struct HandedContext: @unchecked Sendable {
    let pointer: OpaquePointer
}

extension ModbusSimulator {
    /// Serves every unit as Modbus TCP on `host:port` (0 picks a free port) and returns the port bound.
    /// Each client connection gets a thread; an unknown unit id gets exception 0B like a real gateway.
    @discardableResult
    public func serveTCP(host: String = "127.0.0.1", port: Int) throws(ModbusError) -> Int {
        guard let ctx = modbus_new_tcp(host, Int32(port)) else { throw ModbusError(errno: errno, bus: "simulator") }
        let listener = modbus_tcp_listen(ctx, 16)
        if listener < 0 {
            let error = ModbusError(errno: errno, bus: "simulator")
            modbus_free(ctx)
            throw error
        }
        modbus_free(ctx)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let bound = Int(UInt16(bigEndian: address.sin_port))
        logger.info("simulator serving Modbus TCP", metadata: ["host": "\(host)", "port": "\(bound)"])
        startThread { [self] in acceptLoop(listener: listener) { [self] in clientLoop($0) } }
        return bound
    }

    /// Serves every unit as Modbus RTU on a tty (a pty ignores the baud; a real port honours it).
    public func serveRTU(device: String, serial: SerialSettings) throws(ModbusError) {
        let ctx = try ModbusConnection.newRTUContext(device: device, serial: serial, bus: "simulator")
        if modbus_connect(ctx) < 0 {
            let error = ModbusError(errno: errno, bus: "simulator")
            modbus_free(ctx)
            throw error
        }
        logger.info("simulator serving Modbus RTU", metadata: ["device": "\(device)"])
        let handed = HandedContext(pointer: ctx)
        startThread { [self] in rtuLoop(handed.pointer) }
    }

    /// Accepts clients until the simulator stops, each served by `serve` on a thread of its own; closes `listener`.
    func acceptLoop(listener: Int32, serve: @escaping @Sendable (Int32) -> Void) {
        defer { Glibc.close(listener) }
        while !isStopping {
            guard waitReadable(listener) else { continue }
            let client = accept(listener, nil, nil)
            if client < 0 { continue }
            startThread { serve(client) }
        }
    }

    private func clientLoop(_ socket: Int32) {
        // The port is unused: this context only wraps an accepted socket.
        guard let ctx = modbus_new_tcp("127.0.0.1", 502) else {
            Glibc.close(socket)
            return
        }
        modbus_set_socket(ctx, socket)
        defer {
            modbus_close(ctx)
            modbus_free(ctx)
        }
        var request = [UInt8](repeating: 0, count: 260)
        while !isStopping {
            guard waitReadable(socket) else { continue }
            let length = request.withUnsafeMutableBufferPointer { modbus_receive(ctx, $0.baseAddress) }
            if length < 0 { return }
            if length == 0 { continue }
            // MBAP header: the unit id is the 7th byte.
            answer(ctx, request: Array(request.prefix(Int(length))), headerLength: 7, unknownGetsException: true)
        }
    }

    private func rtuLoop(_ ctx: OpaquePointer) {
        defer {
            modbus_close(ctx)
            modbus_free(ctx)
        }
        let fd = modbus_get_socket(ctx)
        var framer = RTUFramer()
        var chunk = [UInt8](repeating: 0, count: 256)
        while !isStopping {
            guard waitReadable(fd, timeoutMs: 20) else {
                // A silence ends whatever partial frame is pending: it was noise.
                framer.reset()
                continue
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { continue }
            framer.append(chunk.prefix(n))
            answerFrames(&framer, ctx)
        }
    }

    /// Answers every whole RTU frame `framer` holds. libmodbus's RTU server drops requests for any unit but its
    /// own, so frames are read here and only the reply goes through libmodbus, addressed as the requested unit;
    /// broadcasts (unit 0) get no reply.
    func answerFrames(_ framer: inout RTUFramer, _ ctx: OpaquePointer) {
        while let frame = framer.nextFrame() {
            let unit = Int(frame[0])
            guard unit != 0 else { continue }
            modbus_set_slave(ctx, Int32(unit))
            answer(ctx, request: frame, headerLength: 1, unknownGetsException: false)
        }
    }

    func answer(_ ctx: OpaquePointer, request: [UInt8], headerLength: Int, unknownGetsException: Bool) {
        let unit = Int(request[headerLength - 1])
        switch lookup(unit: unit) {
        case .silent:
            return
        case .unknown:
            guard unknownGetsException else { return }
            _ = request.withUnsafeBufferPointer {
                modbus_reply_exception(ctx, $0.baseAddress, UInt32(MODBUS_EXCEPTION_GATEWAY_TARGET))
            }
        case .image(let image):
            guard let mapping = Self.mapping(image) else { return }
            defer { modbus_mapping_free(mapping) }
            _ = request.withUnsafeBufferPointer { modbus_reply(ctx, $0.baseAddress, Int32(request.count), mapping) }
            keepWrites(request, headerLength: headerLength, unit: unit, mapping: mapping.pointee)
        }
    }

    /// Writes land in the per-request mapping; pin what they changed so later reads see it.
    private func keepWrites(_ request: [UInt8], headerLength: Int, unit: Int, mapping m: modbus_mapping_t) {
        let pdu = request.dropFirst(headerLength)
        guard pdu.count >= 5 else { return }
        let function = pdu[pdu.startIndex]
        let address = Int(pdu[pdu.startIndex + 1]) << 8 | Int(pdu[pdu.startIndex + 2])
        let quantity = Int(pdu[pdu.startIndex + 3]) << 8 | Int(pdu[pdu.startIndex + 4])
        let count = function == 5 || function == 6 ? 1 : quantity
        var written = RegisterImage()
        switch function {
        case 5, 15:
            for a in address..<(address + count) where a >= Int(m.start_bits) && a < Int(m.start_bits + m.nb_bits) {
                written[.coil, a] = UInt16(m.tab_bits[a - Int(m.start_bits)])
            }
        case 6, 16:
            for a in address..<(address + count)
            where a >= Int(m.start_registers) && a < Int(m.start_registers + m.nb_registers) {
                written[.holding, a] = m.tab_registers[a - Int(m.start_registers)]
            }
        default:
            return
        }
        pin(unit: unit, image: written)
    }

    /// A libmodbus mapping covering, per table, the lowest to the highest address the image holds; reads outside
    /// it get exception 02 (illegal data address) from libmodbus.
    private static func mapping(_ image: RegisterImage) -> UnsafeMutablePointer<modbus_mapping_t>? {
        func extent(_ table: RegisterTable) -> (start: Int32, count: Int32) {
            guard let words = image.tables[table], let low = words.keys.min(), let high = words.keys.max() else {
                return (0, 0)
            }
            return (Int32(low), Int32(high - low + 1))
        }
        let coils = extent(.coil)
        let discrete = extent(.discrete)
        let holding = extent(.holding)
        let input = extent(.input)
        guard
            let m = modbus_mapping_new_start_address(
                UInt32(coils.start), UInt32(coils.count), UInt32(discrete.start), UInt32(discrete.count),
                UInt32(holding.start), UInt32(holding.count), UInt32(input.start), UInt32(input.count))
        else { return nil }
        for (address, word) in image.tables[.coil] ?? [:] {
            m.pointee.tab_bits[address - Int(coils.start)] = word != 0 ? 1 : 0
        }
        for (address, word) in image.tables[.discrete] ?? [:] {
            m.pointee.tab_input_bits[address - Int(discrete.start)] = word != 0 ? 1 : 0
        }
        for (address, word) in image.tables[.holding] ?? [:] {
            m.pointee.tab_registers[address - Int(holding.start)] = word
        }
        for (address, word) in image.tables[.input] ?? [:] {
            m.pointee.tab_input_registers[address - Int(input.start)] = word
        }
        return m
    }
}

/// Waits up to `timeoutMs` for `fd` to become readable, so loops notice stop() without a blocking read.
func waitReadable(_ fd: Int32, timeoutMs: Int32 = 100) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, timeoutMs) > 0
}

/// Splits a serial byte stream into RTU request frames by their function code's length and checks the CRC.
struct RTUFramer {
    private var buffer: [UInt8] = []

    mutating func append<S: Sequence>(_ bytes: S) where S.Element == UInt8 { buffer.append(contentsOf: bytes) }

    mutating func reset() { buffer.removeAll(keepingCapacity: true) }

    /// The next complete frame with a good CRC; frames with a bad CRC are dropped as a device would.
    mutating func nextFrame() -> [UInt8]? {
        while let length = expectedLength(), buffer.count >= length {
            let frame = Array(buffer.prefix(length))
            buffer.removeFirst(length)
            if Self.crc16(frame.dropLast(2)) == UInt16(frame[length - 2]) | UInt16(frame[length - 1]) << 8 {
                return frame
            }
            reset()
        }
        return nil
    }

    private func expectedLength() -> Int? {
        guard buffer.count >= 2 else { return nil }
        switch buffer[1] {
        case 1...6: return 8
        case 15, 16:
            guard buffer.count >= 7 else { return nil }
            return 9 + Int(buffer[6])
        default:
            // Unknown functions: take what has arrived; libmodbus answers exception 01.
            return buffer.count >= 4 ? buffer.count : nil
        }
    }

    /// The Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF); sent low byte first.
    static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc: UInt16 = 0xFFFF
        for byte in bytes {
            crc ^= UInt16(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
        }
        return crc
    }
}
