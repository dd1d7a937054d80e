import Foundation
import PantauCore
import PantauPlatform
import Testing

@testable import PantauModbus

/// A socat pty pair: the simulator serves one end, the master opens the other.
final class PtyPair {
    let directory: String
    private var pid: pid_t = 0
    var serverEnd: String { directory + "/sim" }
    var masterEnd: String { directory + "/master" }

    init() throws {
        directory = NSTemporaryDirectory() + "pantau-rtu-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let arguments = [
            "socat", "PTY,raw,echo=0,link=\(directory)/sim", "PTY,raw,echo=0,link=\(directory)/master",
        ]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        // The test runner's threads block most signals and a spawned child would inherit that mask, so socat
        // would ignore SIGTERM: start it with an empty one.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let rc = posix_spawn(&pid, "/usr/bin/socat", nil, &attributes, argv, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        let clock = SystemClock()
        let deadline = clock.monotonicNanos() + 10_000_000_000
        while !(FileManager.default.fileExists(atPath: serverEnd) && FileManager.default.fileExists(atPath: masterEnd))
            && clock.monotonicNanos() < deadline
        {
            sleepMicros(10_000)
        }
    }

    /// Stops socat and removes the links.
    func close() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { close() }
}

@Suite(.serialized) struct ModbusRTUTests {
    @Test func masterReadsSeveralUnitsOfTheSimulatorThroughAPtyPair() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let serial = SerialSettings(baud: 19200, parity: .even)
        let other = RegisterImage([.holding: [0: 0x2222, 1: 0x3333]])
        let simulator = ModbusSimulator(
            fixed: [(unit: 1, image: fixedImage), (unit: 17, image: other), (unit: 5, image: other)],
            clock: SystemClock(), logger: quietLogger)
        simulator.setSilent(unit: 5, true)
        try simulator.serveRTU(device: pty.serverEnd, serial: serial)
        defer { simulator.stop() }

        // rs485 is requested: a pty cannot do it, which must only be logged.
        let connection = try ModbusConnection.rtu(device: pty.masterEnd, serial: serial, rs485: true, bus: "rtu-test")
        try connection.connect()
        defer { connection.close() }
        connection.setResponseTimeout(ms: 300)

        try connection.setUnit(1)
        #expect(try connection.readRegisters(table: .holding, address: 0, count: 10) == (0..<10).map { 0x1000 + $0 })
        #expect(try connection.readBits(table: .coil, address: 0, count: 4) == [true, false, true, true])
        try connection.setUnit(17)
        #expect(try connection.readRegisters(table: .holding, address: 0, count: 2) == [0x2222, 0x3333])

        try connection.setUnit(17)
        let illegal = #expect(throws: ModbusError.self) {
            try connection.readRegisters(table: .holding, address: 40, count: 1)
        }
        #expect(illegal?.code == .illegalAddress)
        #expect(illegal?.class == .config)

        try connection.setUnit(5)
        let silent = #expect(throws: ModbusError.self) {
            try connection.readRegisters(table: .holding, address: 0, count: 1)
        }
        #expect(silent?.code == .timeout)
        #expect(silent?.class == .link)
        #expect(silent?.description.contains("bus rtu-test unit 5 holding 0+1") == true)

        connection.flush()
        try connection.setUnit(1)
        #expect(try connection.readRegisters(table: .input, address: 100, count: 4) == [0xFFFF, 0x8000, 0, 0x0530])
    }

    @Test func pollerOnAnRTUBusKeepsReadingANeighbourOfASilentUnit() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let serial = SerialSettings(baud: 115200)
        let simulator = ModbusSimulator(
            fixed: [(unit: 1, image: fixedImage), (unit: 2, image: fixedImage)], clock: SystemClock(),
            logger: quietLogger)
        simulator.setSilent(unit: 2, true)
        try simulator.serveRTU(device: pty.serverEnd, serial: serial)
        defer { simulator.stop() }

        let timing = ProfileTiming(responseTimeoutMs: 200, retries: 1)
        let bus = BusConfig(name: "rtu-1", transport: .rtu(RTUSettings(device: pty.masterEnd, serial: serial)))
        let recorder = PollRecorder()
        let poller = BusPoller(
            bus: bus,
            devices: [
                device("aq", unit: 1, every: 1, points: [("a", .holding, 0), ("b", .input, 101)], timing: timing),
                device("dead", unit: 2, every: 1, timing: timing),
            ],
            clock: SystemClock(), logger: quietLogger, codec: testCodec, onPoll: { recorder.record($0) },
            onAvailability: { recorder.record($0, $1, $2) })
        poller.start()
        let clock = SystemClock()
        let deadline = clock.monotonicNanos() + 30_000_000_000
        while (recorder.polls(of: "aq").count < 3 || recorder.availability(of: "dead").isEmpty)
            && clock.monotonicNanos() < deadline
        {
            sleepMicros(20_000)
        }
        poller.stop()

        let aq = recorder.polls(of: "aq")
        #expect(aq.count >= 3)
        #expect(aq.allSatisfy { $0.error == nil && $0.readings.map(\.value) == [.number(0x1000), .number(0x8000)] })
        #expect(recorder.availability(of: "dead") == [false])
        #expect(poller.snapshot().timeouts >= 6)
    }
}
