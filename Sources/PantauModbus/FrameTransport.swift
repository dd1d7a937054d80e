import PantauCore
import PantauPlatform

/// A framed UART sensor (Plantower PMS5003/PMS7003, Nova SDS011, ...) behind the `ModbusTransport` seam, so the
/// bus poller, health, counters and decoder treat it like any device. Its profile's `frame:` says how frames look;
/// the frame's bytes are shown as input registers (register N = bytes 2N, 2N+1).
///
/// A poll takes one whole frame: in passive mode after sending the query, in active mode the next one the sensor
/// streams (input received before the poll is dropped, so a reading is never older than the poll). Noise before
/// the start bytes is skipped; a whole frame is checked (length field, end bytes, checksum) before any byte of it
/// is returned. A bad checksum is a CRC error, a malformed frame bad data, a frame cut short a timeout: each is
/// counted and nothing of it is decoded. Not thread safe: the bus thread owns it.
public final class FrameTransport: ReadOnlyMaster {
    public let frame: FrameSpec
    public let bus: String
    private let link: any ByteLink
    private var responseTimeoutMs = 1000
    /// How long the sensor may take to answer the setup command; its reply is dropped.
    public var setupSettleMs = 200
    /// Bytes skipped as noise before a frame's start.
    public private(set) var skippedBytes = 0

    public init(frame: FrameSpec, link: any ByteLink, bus: String) {
        self.frame = frame
        self.link = link
        self.bus = bus
    }

    /// The transport of a `uart` bus whose frame was attached from its sensor's profile.
    public convenience init(settings: UARTSettings, bus: String) throws(ModbusError) {
        guard let frame = settings.frame else {
            throw ModbusError(code: .invalidArgument, message: "uart bus without a framed sensor profile", bus: bus)
        }
        self.init(frame: frame, link: SerialPort(device: settings.device, serial: settings.serial, bus: bus), bus: bus)
    }

    public func connect() throws(ModbusError) {
        if link.isOpen { return }
        try link.open()
        guard !frame.setup.isEmpty else { return }
        do {
            try link.write(frame.setup)
            // Whatever the sensor says to the setup command (or streamed before it) is not a reading.
            while !(try link.read(max: 256, timeoutMs: setupSettleMs)).isEmpty {}
        } catch {
            link.close()
            throw error
        }
    }

    public func close() { link.close() }

    /// Framed sensors have no unit id; any is accepted.
    public func setUnit(_ unit: Int) throws(ModbusError) {}

    public func setResponseTimeout(ms: Int) { responseTimeoutMs = max(1, ms) }

    public func read(_ request: ReadRequest) throws(ModbusError) -> [UInt16] {
        guard request.table == .input else {
            throw ModbusError(
                code: .illegalFunction, message: "a framed sensor shows its frame as input registers only", bus: bus,
                table: request.table, address: request.address, count: request.count)
        }
        guard request.count > 0, request.address >= 0, request.address + request.count <= frame.registerCount else {
            throw ModbusError(
                code: .illegalAddress, message: "outside the \(frame.length)-byte frame", bus: bus,
                table: request.table, address: request.address, count: request.count)
        }
        let words = FrameSpec.registers(try acquire(request))
        return Array(words[request.address..<(request.address + request.count)])
    }

    /// One whole, checked frame.
    func acquire(_ request: ReadRequest) throws(ModbusError) -> [UInt8] {
        func failure(_ code: ModbusError.Code, _ message: String) -> ModbusError {
            ModbusError(
                code: code, message: message, bus: bus, table: request.table, address: request.address,
                count: request.count)
        }
        link.discardInput()
        if frame.mode == .passive { try link.write(frame.query) }
        let clock = SystemClock()
        let deadline = clock.monotonicNanos() + UInt64(responseTimeoutMs) * 1_000_000
        var buffer: [UInt8] = []
        while true {
            switch frame.scan(buffer) {
            case .frame(let skip, let bytes):
                skippedBytes += skip
                return bytes
            case .invalid(let skip, let fault, let message):
                skippedBytes += skip
                throw failure(fault == .checksum ? .badCRC : .badData, message)
            case .needMore(let skip):
                if skip > 0 {
                    buffer.removeFirst(skip)
                    skippedBytes += skip
                }
            }
            let now = clock.monotonicNanos()
            let left = now >= deadline ? 0 : Int((deadline - now) / 1_000_000) + 1
            let chunk = left > 0 ? try link.read(max: frame.length - buffer.count + 64, timeoutMs: left) : []
            if chunk.isEmpty && clock.monotonicNanos() >= deadline {
                if buffer.isEmpty {
                    throw failure(
                        .timeout,
                        "no frame before the response timeout (\(responseTimeoutMs) ms): "
                            + "check power, wiring (sensor TX to adapter RX) and baud")
                }
                throw failure(.timeout, "truncated frame: \(buffer.count) of \(frame.length) bytes, then silence")
            }
            buffer.append(contentsOf: chunk)
        }
    }

    public func flush() { link.discardInput() }

    public static let writeRefusal = "a framed UART sensor takes no Modbus writes"
}
