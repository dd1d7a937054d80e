import PantauCore
import PantauPlatform
import Synchronization
import Testing

@testable import PantauModbus

#if canImport(Glibc)
    import Glibc
#endif

/// The far end of a socketpair playing a DTU: each request it reads is answered with the next scripted reply,
/// sent in the chunks given (a DTU forwards serial bytes in pieces), or not at all.
final class ScriptedDTU: Sendable {
    enum Reply: Sendable {
        case chunks([[UInt8]])
        case silence
        case hangUp
    }

    let fd: Int32
    private let script: Mutex<[Reply]>
    let requests = Mutex<[[UInt8]]>([])
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<OwnedThread?>(nil)

    init(fd: Int32, _ script: [Reply]) {
        self.fd = fd
        self.script = Mutex(script)
        thread.withLock { $0 = OwnedThread { [self] in loop() } }
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 512)
        while !stopping.load(ordering: .relaxed) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 20) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            requests.withLock { $0.append(Array(buffer.prefix(n))) }
            let reply = script.withLock { $0.isEmpty ? .silence : $0.removeFirst() }
            switch reply {
            case .silence: continue
            case .hangUp:
                shutdown(fd, Int32(SHUT_RDWR))
                return
            case .chunks(let chunks):
                for chunk in chunks {
                    _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    usleep(3000)
                }
            }
        }
    }

    /// Writes bytes nobody asked for (a late reply arriving between transactions).
    func inject(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread.withLock {
            $0?.join()
            $0 = nil
        }
        close(fd)
    }
}

/// A transport whose connector hands out socketpairs, each with a scripted DTU on the other end.
final class DTURig {
    private final class Shared: Sendable {
        let peers = Mutex<[ScriptedDTU]>([])
        let scripts: Mutex<[[ScriptedDTU.Reply]]>
        init(_ scripts: [[ScriptedDTU.Reply]]) { self.scripts = Mutex(scripts) }
    }

    let transport: RTUOverTCPTransport
    private let shared: Shared

    init(_ scripts: [[ScriptedDTU.Reply]], timeoutMs: Int = 200) throws {
        let shared = Shared(scripts)
        self.shared = shared
        transport = RTUOverTCPTransport(bus: "dtu-test") { () throws(ModbusError) -> Int32 in
            var fds: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
                throw ModbusError(errno: errno, bus: "dtu-test")
            }
            let script = shared.scripts.withLock { $0.isEmpty ? [] : $0.removeFirst() }
            shared.peers.withLock { $0.append(ScriptedDTU(fd: fds[1], script)) }
            return fds[0]
        }
        transport.setResponseTimeout(ms: timeoutMs)
        transport.byteTimeoutMs = timeoutMs
        try transport.connect()
    }

    var peer: ScriptedDTU { shared.peers.withLock { $0.last! } }
    var allRequests: [[UInt8]] { shared.peers.withLock { $0.flatMap { $0.requests.withLock { $0 } } } }

    func stop() {
        transport.close()
        shared.peers.withLock { peers in
            for peer in peers { peer.stop() }
        }
    }
}

private func frame(_ unit: Int, _ pdu: [UInt8]) -> [UInt8] { RTUFraming.frame(unit: unit, pdu: pdu) }

@Suite struct RTUFramingTests {
    @Test func crcMatchesTheSpecificationsExamples() {
        // Modbus over Serial Line V1.02 / the classic FC3 example: 01 03 00 00 00 0A -> CRC C5 CD on the wire.
        #expect(frame(1, [0x03, 0x00, 0x00, 0x00, 0x0A]) == [0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD])
        // Exception 02 to FC3 from unit 1: 01 83 02 C0 F1.
        #expect(frame(1, [0x83, 0x02]) == [0x01, 0x83, 0x02, 0xC0, 0xF1])
    }

    @Test func requestsCarryUnitFunctionAddressCountAndCRC() {
        let t = RTUFraming.read(unit: 17, ReadRequest(table: .input, address: 0x0108, count: 3))
        #expect(Array(t.request.prefix(6)) == [17, 4, 0x01, 0x08, 0x00, 0x03])
        #expect(t.replyLength == 11)
        let bits = RTUFraming.read(unit: 2, ReadRequest(table: .coil, address: 0, count: 10))
        #expect(bits.reply == .data(2))
    }

    @Test func aReplyIsCheckedPartByPartBeforeItIsDecoded() {
        let t = RTUFraming.read(unit: 1, ReadRequest(table: .holding, address: 0, count: 2))
        let good = frame(1, [0x03, 0x04, 0x12, 0x34, 0xAB, 0xCD])
        #expect(RTUFraming.check([], for: t) == .needs(2))
        #expect(RTUFraming.check(Array(good.prefix(2)), for: t) == .needs(3))
        #expect(RTUFraming.check(Array(good.prefix(4)), for: t) == .needs(9))
        #expect(RTUFraming.check(good, for: t) == .done([0x12, 0x34, 0xAB, 0xCD]))
        var corrupt = good
        corrupt[4] ^= 0x01
        guard case .failed(.badCRC, _, _) = RTUFraming.check(corrupt, for: t) else {
            Issue.record("a flipped bit must fail the CRC")
            return
        }
        guard case .failed(.badData, _, _) = RTUFraming.check(frame(2, [0x03, 0x04, 0, 0, 0, 0]), for: t) else {
            Issue.record("another unit's reply is bad data")
            return
        }
        guard case .failed(.badData, _, _) = RTUFraming.check(Array(frame(1, [0x03, 0x02, 0, 0]).prefix(3)), for: t)
        else {
            Issue.record("a wrong byte count is bad data, found as soon as it arrives")
            return
        }
        guard case .failed(.badData, _, _) = RTUFraming.check(frame(1, [0x04, 0x04, 0, 0, 0, 0]), for: t) else {
            Issue.record("a wrong function is bad data")
            return
        }
        guard case .failed(.illegalAddress, _, _) = RTUFraming.check(frame(1, [0x83, 0x02]), for: t) else {
            Issue.record("exception 02 is an illegal address")
            return
        }
        guard case .failed(.badData, _, _) = RTUFraming.check(frame(1, [0x83, 0x09]), for: t) else {
            Issue.record("an unknown exception code is bad data")
            return
        }
        var badException = frame(1, [0x83, 0x02])
        badException[4] ^= 0xFF
        guard case .failed(.badCRC, _, _) = RTUFraming.check(badException, for: t) else {
            Issue.record("an exception frame with a bad CRC is a CRC error, not an exception")
            return
        }
    }

    @Test func bitsAreLeastSignificantFirst() {
        #expect(
            RTUFraming.bits([0b0000_0101, 0b0000_0010], count: 10)
                == [true, false, true, false, false, false, false, false, false, true])
    }
}

@Suite(.serialized) struct RTUOverTCPTransportTests {
    @Test func readsRegistersFromAReplyArrivingInPieces() throws {
        let reply = frame(7, [0x03, 0x04, 0x01, 0x02, 0xFF, 0xFE])
        let rig = try DTURig([[.chunks([Array(reply.prefix(2)), Array(reply[2..<5]), Array(reply.suffix(4))])]])
        defer { rig.stop() }
        try rig.transport.setUnit(7)
        let words = try rig.transport.read(ReadRequest(table: .holding, address: 100, count: 2))
        #expect(words == [0x0102, 0xFFFE])
        #expect(rig.allRequests == [frame(7, [0x03, 0x00, 0x64, 0x00, 0x02])])
    }

    @Test func readsCoilsAndWrites() throws {
        let rig = try DTURig([
            [
                .chunks([frame(1, [0x01, 0x02, 0b0000_0101, 0b0000_0010])]),
                .chunks([frame(1, [0x06, 0x00, 0x0A, 0x12, 0x34])]),
                .chunks([frame(1, [0x10, 0x00, 0x0A, 0x00, 0x02])]),
                .chunks([frame(1, [0x05, 0x00, 0x03, 0xFF, 0x00])]),
            ]
        ])
        defer { rig.stop() }
        try rig.transport.setUnit(1)
        #expect(
            try rig.transport.read(ReadRequest(table: .coil, address: 0, count: 10))
                == [1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
        try rig.transport.writeRegister(address: 10, value: 0x1234)
        try rig.transport.writeRegisters(address: 10, values: [1, 2])
        try rig.transport.writeCoil(address: 3, on: true)
        #expect(rig.allRequests[1] == frame(1, [0x06, 0x00, 0x0A, 0x12, 0x34]))
        #expect(rig.allRequests[2] == frame(1, [0x10, 0x00, 0x0A, 0x00, 0x02, 0x04, 0x00, 0x01, 0x00, 0x02]))
        #expect(rig.allRequests[3] == frame(1, [0x05, 0x00, 0x03, 0xFF, 0x00]))
    }

    @Test func garbageIsAnErrorNeverData() throws {
        var corrupt = frame(1, [0x03, 0x02, 0x00, 0x2A])
        corrupt[3] ^= 0x10
        let rig = try DTURig([
            [
                .chunks([corrupt]),
                .chunks([frame(9, [0x03, 0x02, 0x00, 0x2A])]),
                .chunks([frame(1, [0x83, 0x02])]),
                .chunks([frame(1, [0x03, 0x04, 0x00, 0x2A, 0x00, 0x2B])]),
                .chunks([frame(1, [0x03, 0x02, 0x00, 0x2A])]),
            ]
        ])
        defer { rig.stop() }
        try rig.transport.setUnit(1)
        let request = ReadRequest(table: .holding, address: 0, count: 1)
        #expect(throws: ModbusError.self) { try rig.transport.read(request) }
        do { _ = try rig.transport.read(request) } catch { #expect(error.code == .badData) }
        do { _ = try rig.transport.read(request) } catch { #expect(error.code == .illegalAddress) }
        do { _ = try rig.transport.read(request) } catch { #expect(error.code == .badData) }
        // The stream is in step again: the next good reply is read as such, on the same connection (the
        // exception reply proved the link alive, so two garbage frames in a row do not reopen it).
        #expect(try rig.transport.read(request) == [42])
        #expect(rig.transport.connects == 1)
        #expect(rig.transport.discardedBytes >= 4)  // the rest of the over-long reply
    }

    @Test func aCorruptCRCIsCountedAsACRCError() throws {
        var corrupt = frame(1, [0x03, 0x02, 0x00, 0x2A])
        corrupt[5] ^= 0xFF
        let rig = try DTURig([[.chunks([corrupt])]])
        defer { rig.stop() }
        try rig.transport.setUnit(1)
        do {
            _ = try rig.transport.read(ReadRequest(table: .holding, address: 0, count: 1))
            Issue.record("a bad CRC must not give data")
        } catch {
            #expect(error.code == .badCRC)
            #expect(error.unit == 1 && error.table == .holding && error.address == 0)
        }
    }

    @Test func aTruncatedReplyTimesOutAndSaysSo() throws {
        let rig = try DTURig([[.chunks([Array(frame(1, [0x03, 0x04, 0, 1, 0, 2]).prefix(6))])]])
        defer { rig.stop() }
        try rig.transport.setUnit(1)
        do {
            _ = try rig.transport.read(ReadRequest(table: .holding, address: 0, count: 2))
            Issue.record("a truncated reply must not give data")
        } catch {
            #expect(error.code == .timeout)
            #expect(error.message.contains("truncated reply: 6 of 9"))
        }
    }

    @Test func aLateReplyWaitingBeforeARequestIsDiscarded() throws {
        let rig = try DTURig([[.silence, .chunks([frame(3, [0x04, 0x02, 0x00, 0x07])])]])
        defer { rig.stop() }
        try rig.transport.setUnit(3)
        let request = ReadRequest(table: .input, address: 0, count: 1)
        do {
            _ = try rig.transport.read(request)
            Issue.record("silence must time out")
        } catch {
            #expect(error.code == .timeout)
        }
        // The reply to the timed-out request arrives late, between transactions.
        rig.peer.inject(frame(3, [0x04, 0x02, 0x00, 0x99]))
        usleep(20_000)
        #expect(try rig.transport.read(request) == [7])
        #expect(rig.transport.discardedBytes == 7)
    }

    @Test func theDTUHangingUpIsAConnectionError() throws {
        let rig = try DTURig([[.hangUp]])
        defer { rig.stop() }
        try rig.transport.setUnit(1)
        do {
            _ = try rig.transport.read(ReadRequest(table: .holding, address: 0, count: 1))
            Issue.record("a closed stream must not give data")
        } catch {
            #expect(error.code == .connection)
            #expect(error.class == .connection)
        }
        #expect(!rig.transport.isConnected)
    }

    @Test func timeoutsInARowReopenTheConnection() throws {
        // The first connection only ever stays silent (a NAT box dropped it); the second answers.
        let rig = try DTURig(
            [
                [.silence, .silence, .silence],
                [.chunks([frame(1, [0x03, 0x02, 0x00, 0x05])])],
            ], timeoutMs: 50)
        defer { rig.stop() }
        try rig.transport.setUnit(1)
        let request = ReadRequest(table: .holding, address: 0, count: 1)
        for _ in 0..<3 {
            do {
                _ = try rig.transport.read(request)
                Issue.record("silence must time out")
            } catch {
                #expect(error.code == .timeout)
            }
        }
        #expect(rig.transport.connects == 1)
        #expect(try rig.transport.read(request) == [5])
        #expect(rig.transport.connects == 2)
    }

    @Test func severalUnitsShareOneConnection() throws {
        let rig = try DTURig(
            [
                [
                    .chunks([frame(1, [0x03, 0x02, 0x00, 0x01])]),
                    .silence,
                    .chunks([frame(1, [0x03, 0x02, 0x00, 0x02])]),
                ]
            ], timeoutMs: 50)
        defer { rig.stop() }
        let request = ReadRequest(table: .holding, address: 0, count: 1)
        try rig.transport.setUnit(1)
        #expect(try rig.transport.read(request) == [1])
        try rig.transport.setUnit(2)
        #expect(throws: ModbusError.self) { try rig.transport.read(request) }
        try rig.transport.setUnit(1)
        #expect(try rig.transport.read(request) == [2])
        #expect(rig.transport.connects == 1)
        #expect(rig.allRequests.map { $0[0] } == [1, 2, 1])
    }

    @Test func connectingToAClosedPortIsAConnectionError() throws {
        // Bind a port, then close it: nothing listens there.
        let transport = RTUOverTCPTransport(
            settings: RTUOverTCPSettings(host: "127.0.0.1", port: try closedPort()), bus: "dtu")
        do {
            try transport.connect()
            Issue.record("nothing listens there")
        } catch {
            #expect(error.class == .connection)
            #expect(error.message.contains("127.0.0.1"))
        }
    }

    private func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

@Suite(.serialized) struct RTUOverTCPSimulatorTests {
    @Test func theMasterReadsTheSimulatorsRTUOverTCPServer() throws {
        let one = RegisterImage([.holding: [0: 0x1234, 1: 0xBEEF], .coil: [0: 1, 1: 0, 2: 1]])
        let two = RegisterImage([.input: [5: 77]])
        let simulator = ModbusSimulator(fixed: [(1, one), (2, two)], clock: SystemClock(), logger: .init(label: "t"))
        defer { simulator.stop() }
        simulator.setSilent(unit: 2, false)
        let port = try simulator.serveRTUOverTCP(port: 0)
        let master = RTUOverTCPTransport(settings: RTUOverTCPSettings(host: "127.0.0.1", port: port), bus: "sim")
        defer { master.close() }
        master.setResponseTimeout(ms: 1000)
        try master.connect()
        try master.setUnit(1)
        #expect(try master.read(ReadRequest(table: .holding, address: 0, count: 2)) == [0x1234, 0xBEEF])
        #expect(try master.read(ReadRequest(table: .coil, address: 0, count: 3)) == [1, 0, 1])
        try master.writeRegister(address: 1, value: 7)
        #expect(try master.read(ReadRequest(table: .holding, address: 1, count: 1)) == [7])
        try master.setUnit(2)
        #expect(try master.read(ReadRequest(table: .input, address: 5, count: 1)) == [77])
        do {
            _ = try master.read(ReadRequest(table: .input, address: 9, count: 1))
            Issue.record("outside the image is exception 02")
        } catch {
            #expect(error.code == .illegalAddress)
        }
        simulator.setSilent(unit: 2, true)
        master.setResponseTimeout(ms: 100)
        do {
            _ = try master.read(ReadRequest(table: .input, address: 5, count: 1))
            Issue.record("a silent unit does not answer")
        } catch {
            #expect(error.code == .timeout)
        }
        #expect(master.connects == 1)
    }
}

@Suite struct RTUOverTCPBusTimingTests {
    /// The poller keeps the far side's t3.5 between frames on an rtu_over_tcp bus, and after a timeout waits it
    /// and flushes before the next request, as on a local RTU line.
    @Test(arguments: [
        (SerialSettings(baud: 19200, parity: .even) as SerialSettings?, 2006),
        (nil, RTUOverTCPSettings.defaultGapMicros),
    ])
    func theSilenceComesFromTheFarSidesBaud(serial: SerialSettings?, silence: Int) {
        let settings = RTUOverTCPSettings(host: "dtu", port: 4001, serial: serial)
        #expect(settings.effectiveInterFrameMicros == silence)
        let bus = BusConfig(name: "rs485-1", transport: .rtuOverTCP(settings))
        let rig = PollerRig(bus: bus, devices: [device("dead", unit: 2), device("alive", unit: 1)])
        rig.transport.set(unit: 1, .answers(image(.holding, [0: 1])))
        rig.transport.set(unit: 2, .silent)

        rig.run(seconds: 30)

        let reads = rig.transport.reads
        #expect(reads.count >= 6)
        for (previous, next) in zip(reads, reads.dropFirst()) {
            #expect(next.start - previous.end >= UInt64(silence) * 1000)
        }
        let events = rig.transport.events
        for (index, event) in events.enumerated() {
            guard case .read(_, _, _, _, false) = event else { continue }
            let after = events[(index + 1)...]
            let pause = after.firstIndex { if case .pause(let m) = $0 { m >= silence } else { false } }
            let flush = after.firstIndex(of: .flush)
            #expect(pause != nil && flush != nil && pause! < flush!)
        }
        // The answering unit kept its 10 s schedule beside the silent one.
        #expect(rig.recorder.polls(of: "alive").filter { $0.error == nil }.count >= 3)
    }
}
