import PantauCore
import PantauPlatform
import Synchronization
import Testing

@testable import PantauModbus

#if canImport(Glibc)
    import Glibc
#endif

/// A sensor at the byte seam: each write may be answered with chunks; `stream` chunks arrive whatever is written.
final class ScriptedLink: ByteLink {
    var isOpen = false
    var written: [[UInt8]] = []
    var answers: [[[UInt8]]]
    var stream: [[UInt8]]
    private var pending: [[UInt8]] = []
    var discards = 0
    var breaks = 0

    init(answers: [[[UInt8]]] = [], stream: [[UInt8]] = []) {
        self.answers = answers
        self.stream = stream
    }

    func open() throws(ModbusError) { isOpen = true }
    func close() { isOpen = false }
    func write(_ bytes: [UInt8]) throws(ModbusError) {
        written.append(bytes)
        if !answers.isEmpty { pending += answers.removeFirst() }
    }
    func read(max: Int, timeoutMs: Int) throws(ModbusError) -> [UInt8] {
        if !pending.isEmpty { return pending.removeFirst() }
        if !stream.isEmpty { return stream.removeFirst() }
        usleep(UInt32(min(timeoutMs, 20)) * 1000)
        return []
    }
    func discardInput() {
        discards += 1
        pending = []
    }
    func sendBreak(ms: Int) throws(ModbusError) { breaks += 1 }
}

private let pms = FrameSpec(
    mode: .passive, start: [0x42, 0x4D], length: 32, lengthField: .init(offset: 2, value: 28),
    checksum: .init(kind: .sum16, from: 0, to: 30, at: 30), setup: [0x42, 0x4D, 0xE1, 0x00, 0x00, 0x01, 0x70],
    query: [0x42, 0x4D, 0xE2, 0x00, 0x00, 0x01, 0x71])

private let sds = FrameSpec(
    mode: .passive, start: [0xAA, 0xC0], length: 10, end: [0xAB], checksum: .init(kind: .sum8, from: 2, to: 8, at: 8),
    query: [0xAA, 0xB4, 0x04])

/// The PyPMS "known good data" frame: PM 5/13/22, counts 765, 252, 29, 15, 6, 6.
private let pmsFrame: [UInt8] = parseHexBytes(
    "42 4D 00 1C 00 05 00 0D 00 16 00 05 00 0D 00 16 02 FD 00 FC 00 1D 00 0F 00 06 00 06 97 00 03 C5")!
private let sdsFrame: [UInt8] = parseHexBytes("AA C0 D4 04 3A 0A A1 60 1D AB")!

@Suite struct FrameSpecTests {
    @Test func findsAFrameAfterNoiseAndChecksIt() {
        #expect(pms.scan([]) == .needMore(skip: 0))
        #expect(pms.scan([0x00, 0x42]) == .needMore(skip: 1))  // a start byte at the end may begin a frame
        #expect(pms.scan([0x11, 0x22] + pmsFrame) == .frame(skip: 2, bytes: pmsFrame))
        #expect(pms.scan(Array(pmsFrame.prefix(20))) == .needMore(skip: 0))
        var bad = pmsFrame
        bad[9] ^= 0x01
        guard case .invalid(0, .checksum, let message) = pms.scan(bad) else {
            Issue.record("a changed byte must fail the checksum")
            return
        }
        #expect(message.contains("sum16 is 0x03C5, computed 0x03C6"))
        // The length field is checked as soon as it arrives: the reply to a mode command is no data frame.
        guard case .invalid(0, .shape, _) = pms.scan([0x42, 0x4D, 0x00, 0x04, 0xE1]) else {
            Issue.record("length field 4 is the wrong shape")
            return
        }
    }

    @Test func sds011ChecksumCoversTheDataBytesAndTheTailIsChecked() {
        #expect(sds.scan(sdsFrame) == .frame(skip: 0, bytes: sdsFrame))
        var noTail = sdsFrame
        noTail[9] = 0
        guard case .invalid(0, .shape, _) = sds.scan(noTail) else {
            Issue.record("a missing tail is the wrong shape")
            return
        }
        // A command reply (AA C5 ...) before the data frame is skipped as noise.
        let reply: [UInt8] = [0xAA, 0xC5, 0x02, 0x01, 0x01, 0x00, 0xA1, 0x60, 0x05, 0xAB]
        #expect(sds.scan(reply + sdsFrame) == .frame(skip: 10, bytes: sdsFrame))
    }

    @Test func framesAreShownAsBigEndianRegisters() {
        #expect(Array(FrameSpec.registers(sdsFrame).prefix(3)) == [0xAAC0, 0xD404, 0x3A0A])
        #expect(FrameSpec.registers([1, 2, 3]) == [0x0102, 0x0300])
    }
}

@Suite struct FrameTransportTests {
    @Test func passiveModeSendsSetupOnceAndAQueryPerPoll() throws {
        let half = Array(pmsFrame.prefix(13))
        let rest = Array(pmsFrame.suffix(19))
        let link = ScriptedLink(answers: [[[0x42, 0x4D, 0x00, 0x04, 0xE1, 0x00, 0x01, 0x74]], [[0xFF], half, rest]])
        let transport = FrameTransport(frame: pms, link: link, bus: "pm")
        transport.setupSettleMs = 10
        try transport.connect()
        let words = try transport.read(ReadRequest(table: .input, address: 5, count: 9))
        #expect(words == [5, 13, 22, 765, 252, 29, 15, 6, 6])
        #expect(link.written == [pms.setup, pms.query])
        #expect(transport.skippedBytes == 1)
    }

    @Test func aBadChecksumIsACRCErrorAndNoData() throws {
        var bad = pmsFrame
        bad[12] = 0x01
        let link = ScriptedLink(answers: [[bad]])
        let transport = FrameTransport(frame: pms, link: link, bus: "pm")
        transport.setResponseTimeout(ms: 100)
        try link.open()
        do {
            _ = try transport.read(ReadRequest(table: .input, address: 5, count: 3))
            Issue.record("a bad checksum must not give data")
        } catch {
            #expect(error.code == .badCRC)
            #expect(error.class == .link)
        }
    }

    @Test func aTruncatedFrameTimesOutAndSaysSo() throws {
        let link = ScriptedLink(answers: [[Array(sdsFrame.prefix(6))]])
        let transport = FrameTransport(frame: sds, link: link, bus: "sds")
        transport.setResponseTimeout(ms: 60)
        try link.open()
        do {
            _ = try transport.read(ReadRequest(table: .input, address: 1, count: 2))
            Issue.record("a truncated frame must not give data")
        } catch {
            #expect(error.code == .timeout)
            #expect(error.message.contains("truncated frame: 6 of 10 bytes"))
        }
        let silent = FrameTransport(frame: sds, link: ScriptedLink(), bus: "sds")
        silent.setResponseTimeout(ms: 40)
        do {
            _ = try silent.read(ReadRequest(table: .input, address: 1, count: 2))
        } catch {
            #expect(error.code == .timeout)
            #expect(error.message.contains("no frame"))
        }
    }

    @Test func activeModeDropsOldInputAndTakesTheNextWholeFrame() throws {
        var active = pms
        active.mode = .active
        active.setup = []
        let link = ScriptedLink(stream: [Array(pmsFrame.suffix(10)), pmsFrame])
        let transport = FrameTransport(frame: active, link: link, bus: "pm")
        try transport.connect()
        #expect(try transport.read(ReadRequest(table: .input, address: 6, count: 1)) == [13])
        #expect(link.written.isEmpty)
        #expect(link.discards == 1)
        #expect(transport.skippedBytes == 10)  // the tail of a frame begun before the poll
    }

    @Test func onlyInputRegistersInsideTheFrameAndNoWrites() throws {
        let transport = FrameTransport(frame: sds, link: ScriptedLink(), bus: "sds")
        #expect(throws: ModbusError.self) { try transport.read(ReadRequest(table: .holding, address: 1, count: 1)) }
        do {
            _ = try transport.read(ReadRequest(table: .input, address: 4, count: 2))
        } catch {
            #expect(error.code == .illegalAddress)
        }
        expectWritesRefused(transport, "a framed UART sensor takes no Modbus writes", bus: "sds")
    }
}

/// Every write of a read-only link throws illegal function with `message`, and writes nothing.
func expectWritesRefused(_ master: some ModbusMaster, _ message: String, bus: String) {
    let writes: [(String, () throws(ModbusError) -> Void)] = [
        ("writeRegister", { () throws(ModbusError) in try master.writeRegister(address: 0, value: 1) }),
        ("writeRegisters", { () throws(ModbusError) in try master.writeRegisters(address: 0, values: [1, 2]) }),
        ("writeCoil", { () throws(ModbusError) in try master.writeCoil(address: 0, on: true) }),
        ("writeCoils", { () throws(ModbusError) in try master.writeCoils(address: 0, values: [true]) }),
        ("write", { () throws(ModbusError) in try master.write(table: .holding, address: 0, words: [1]) }),
    ]
    for (name, write) in writes {
        do {
            try write()
            Issue.record("\(name) did not throw")
        } catch {
            #expect(error.code == .illegalFunction, "\(name)")
            #expect(error.message == message, "\(name)")
            #expect(error.bus == bus, "\(name)")
        }
    }
}

/// A pty pair made with posix_openpt: the test holds the master, `SerialPort` opens the slave by name.
final class Pty: Sendable {
    let master: Int32
    let slavePath: String

    init() throws {
        // posix_openpt and friends are not visible from Swift's Glibc: the same steps with /dev/ptmx ioctls.
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        var unlock: Int32 = 0
        var number: UInt32 = 0
        let tiocsptlck: UInt = 0x4004_5431
        let tiocgptn: UInt = 0x8004_5430
        guard master >= 0, ioctl(master, tiocsptlck, &unlock) == 0, ioctl(master, tiocgptn, &number) == 0 else {
            throw ModbusError(errno: errno, bus: "pty")
        }
        slavePath = "/dev/pts/\(number)"
        // Raw on the master side too, so bytes pass unchanged.
        var tio = termios()
        tcgetattr(master, &tio)
        cfmakeraw(&tio)
        tcsetattr(master, TCSANOW, &tio)
    }

    func write(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.write(master, $0.baseAddress, $0.count) } }

    func read(timeoutMs: Int32 = 500) -> [UInt8] {
        var entry = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, timeoutMs) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
        return n > 0 ? Array(buffer.prefix(n)) : []
    }

    deinit { close(master) }
}

@Suite(.serialized) struct SerialPortTests {
    @Test func aFrameTransportOnARealPtyReadsTheSDS011Frame() throws {
        let pty = try Pty()
        let port = SerialPort(device: pty.slavePath, serial: SerialSettings(baud: 9600), bus: "sds")
        let transport = FrameTransport(frame: sds, link: port, bus: "sds")
        transport.setResponseTimeout(ms: 2000)
        try transport.connect()
        defer { transport.close() }
        pty.write([0x01, 0x02])  // stale bytes from before the poll: dropped
        usleep(20_000)
        let answered = Background { () -> [UInt8] in
            // The sensor side: wait for the query, answer with the captured frame in two pieces.
            var got: [UInt8] = []
            while got.count < 3 { got += pty.read() }
            pty.write(Array(sdsFrame.prefix(4)))
            usleep(10_000)
            pty.write(Array(sdsFrame.suffix(6)))
            return got
        }
        let words = try transport.read(ReadRequest(table: .input, address: 1, count: 2))
        #expect(words == [0xD404, 0x3A0A])  // little-endian values: the profile's order BA decodes them
        #expect(answered.join() == [0xAA, 0xB4, 0x04])
    }

    @Test func aMissingDeviceIsAConnectionError() {
        let port = SerialPort(device: "/dev/pantau-no-such-tty", serial: SerialSettings(), bus: "x")
        do {
            try port.open()
            Issue.record("no such device")
        } catch {
            #expect(error.class == .connection)
        }
    }
}

/// A body run on a thread of its own, whose result `join` returns.
final class Background<T: Sendable>: Sendable {
    private final class Box: Sendable {
        let value = Mutex<T?>(nil)
    }

    private let box = Box()
    private let thread: OwnedThread

    init(_ body: @escaping @Sendable () -> T) {
        let box = self.box
        thread = OwnedThread { box.value.withLock { $0 = body() } }
    }

    func join() -> T? {
        thread.join()
        return box.value.withLock { $0 }
    }
}
