import PantauCore
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// A byte stream to one device: the seam between a sensor protocol (frames, SDI-12) and the serial port.
/// Not thread safe: the bus thread owns it.
public protocol ByteLink: AnyObject {
    var isOpen: Bool { get }
    func open() throws(ModbusError)
    func close()
    func write(_ bytes: [UInt8]) throws(ModbusError)
    /// Waits up to `timeoutMs` for bytes and returns those that arrived (at most `max`); empty on a timeout.
    func read(max: Int, timeoutMs: Int) throws(ModbusError) -> [UInt8]
    /// Drops whatever was received and not read yet.
    func discardInput()
    /// Holds the line in the spacing (break) state for `ms`, then releases it (SDI-12 wakes sensors so).
    func sendBreak(ms: Int) throws(ModbusError)
}

/// A serial port opened raw with termios (no libmodbus): for sensors that do not speak Modbus.
public final class SerialPort: ByteLink {
    public let device: String
    public let serial: SerialSettings
    public let bus: String
    private var fd: Int32 = -1

    /// Rates with a termios constant; any other is refused rather than silently changed.
    public static let speeds: [Int: speed_t] = [
        1200: speed_t(B1200), 2400: speed_t(B2400), 4800: speed_t(B4800), 9600: speed_t(B9600),
        19200: speed_t(B19200), 38400: speed_t(B38400), 57600: speed_t(B57600), 115200: speed_t(B115200),
        230400: speed_t(B230400),
    ]

    public init(device: String, serial: SerialSettings, bus: String) {
        self.device = device
        self.serial = serial
        self.bus = bus
    }

    deinit { close() }

    public var isOpen: Bool { fd >= 0 }

    public func open() throws(ModbusError) {
        if fd >= 0 { return }
        guard let speed = Self.speeds[serial.baud] else {
            throw ModbusError(code: .invalidArgument, message: "baud \(serial.baud) has no termios speed", bus: bus)
        }
        let handle = Glibc.open(device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard handle >= 0 else { throw ModbusError(errno: errno, bus: bus) }
        var tio = termios()
        guard tcgetattr(handle, &tio) == 0 else {
            let error = ModbusError(errno: errno, bus: bus)
            Glibc.close(handle)
            throw error
        }
        cfmakeraw(&tio)
        cfsetispeed(&tio, speed)
        cfsetospeed(&tio, speed)
        let cleared: tcflag_t =
            tcflag_t(CSIZE) | tcflag_t(PARENB) | tcflag_t(PARODD) | tcflag_t(CSTOPB)
            | tcflag_t(CRTSCTS)
        var c: tcflag_t = tio.c_cflag & ~cleared
        c |= serial.dataBits == 7 ? tcflag_t(CS7) : tcflag_t(CS8)
        c |= tcflag_t(CLOCAL) | tcflag_t(CREAD)
        if serial.parity != .none { c |= tcflag_t(PARENB) }
        if serial.parity == .odd { c |= tcflag_t(PARODD) }
        if serial.stopBits == 2 { c |= tcflag_t(CSTOPB) }
        tio.c_cflag = c
        guard tcsetattr(handle, TCSANOW, &tio) == 0 else {
            let error = ModbusError(errno: errno, bus: bus)
            Glibc.close(handle)
            throw error
        }
        tcflush(handle, TCIOFLUSH)
        fd = handle
    }

    public func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }

    public func write(_ bytes: [UInt8]) throws(ModbusError) {
        guard fd >= 0 else { throw ModbusError(code: .connection, errno: EBADF, message: "port not open", bus: bus) }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN {
                    var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&entry, 1, 100)
                    continue
                }
                throw ModbusError(errno: code, bus: bus)
            }
            sent += n
        }
        // The request must be on the wire before a reply is awaited (and before a break is sent).
        tcdrain(fd)
    }

    public func read(max: Int, timeoutMs: Int) throws(ModbusError) -> [UInt8] {
        guard fd >= 0 else { throw ModbusError(code: .connection, errno: EBADF, message: "port not open", bus: bus) }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, Int32(clamping: Swift.max(0, timeoutMs)))
        if ready < 0 {
            if errno == EINTR { return [] }
            throw ModbusError(errno: errno, bus: bus)
        }
        guard ready > 0 else { return [] }
        if entry.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 && entry.revents & Int16(POLLIN) == 0 {
            throw ModbusError(code: .connection, errno: EIO, message: "the serial port hung up", bus: bus)
        }
        var buffer = [UInt8](repeating: 0, count: Swift.max(1, max))
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            let code = errno
            if code == EAGAIN || code == EINTR { return [] }
            throw ModbusError(errno: code, bus: bus)
        }
        if n == 0 { throw ModbusError(code: .connection, errno: EIO, message: "the serial port hung up", bus: bus) }
        return Array(buffer.prefix(n))
    }

    public func discardInput() {
        guard fd >= 0 else { return }
        tcflush(fd, TCIFLUSH)
        // A pty (and some USB adapters) may still hold bytes tcflush did not see: read them away.
        var scratch = [UInt8](repeating: 0, count: 256)
        while scratch.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, $0.count) }) > 0 {}
    }

    public func sendBreak(ms: Int) throws(ModbusError) {
        guard fd >= 0 else { throw ModbusError(code: .connection, errno: EBADF, message: "port not open", bus: bus) }
        // TIOCSBRK/TIOCCBRK give a break of our length; a pty refuses them, so fall back to tcsendbreak there.
        if ioctl(fd, UInt(TIOCSBRK)) == 0 {
            sleepMicros(ms * 1000)
            _ = ioctl(fd, UInt(TIOCCBRK))
        } else {
            _ = tcsendbreak(fd, 0)
        }
    }
}
