import Logging
import PantauCore
import Synchronization

@testable import PantauModbus

/// A clock that moves only when told to: reads and pauses advance it.
final class FakeClock: GatewayClock {
    private let state: Mutex<(wall: Int64, mono: UInt64)>

    init(startMillis: Int64 = 1_700_000_000_000) { state = Mutex((startMillis, 1_000_000_000)) }

    func now() -> UnixMillis { state.withLock { $0.wall } }
    func monotonicNanos() -> UInt64 { state.withLock { $0.mono } }

    func advance(micros: Int) {
        state.withLock { s in
            s.mono += UInt64(micros) * 1000
            // Wall time in whole ms; keep the remainder so many short pauses still add up.
            s.wall = 1_700_000_000_000 + Int64((s.mono - 1_000_000_000) / 1_000_000)
        }
    }

    func advance(ms: Int64) { advance(micros: Int(ms) * 1000) }
}

/// A scripted Modbus master: units answer from a register image, stay silent, or fail; every call is logged.
final class FakeTransport: ModbusTransport, Sendable {
    enum Event: Equatable, CustomStringConvertible {
        case connect, close, flush
        case unit(Int)
        case timeout(Int)
        case read(unit: Int, ReadRequest, startNanos: UInt64, endNanos: UInt64, ok: Bool)
        case pause(micros: Int)

        var description: String {
            switch self {
            case .connect: return "connect"
            case .close: return "close"
            case .flush: return "flush"
            case .unit(let u): return "unit \(u)"
            case .timeout(let ms): return "timeout \(ms)"
            case .read(let unit, let request, _, _, let ok): return "read \(unit) \(request) \(ok ? "ok" : "failed")"
            case .pause(let micros): return "pause \(micros)"
            }
        }
    }

    enum Behaviour {
        case answers(RegisterImage)
        case silent
        case dropsConnection
        /// Answers with a frame that fails validation (bad MBAP length, wrong unit...).
        case garbage
    }

    private struct State {
        var units: [Int: Behaviour] = [:]
        var events: [Event] = []
        var unit = 0
        var timeoutMs = 500
        var connectFailures = 0
    }

    let clock: FakeClock
    /// Time one answered transaction takes on the wire.
    let readCostMicros: Int
    private let state = Mutex(State())

    init(clock: FakeClock, readCostMicros: Int = 20_000) {
        self.clock = clock
        self.readCostMicros = readCostMicros
    }

    func set(unit: Int, _ behaviour: Behaviour) { state.withLock { $0.units[unit] = behaviour } }
    func failNextConnects(_ n: Int) { state.withLock { $0.connectFailures = n } }
    func log(_ event: Event) { state.withLock { $0.events.append(event) } }
    var events: [Event] { state.withLock { $0.events } }

    var reads: [(unit: Int, request: ReadRequest, start: UInt64, end: UInt64, ok: Bool)] {
        events.compactMap {
            guard case .read(let unit, let request, let start, let end, let ok) = $0 else { return nil }
            return (unit, request, start, end, ok)
        }
    }

    func connect() throws(ModbusError) {
        let fail = state.withLock { s -> Bool in
            s.events.append(.connect)
            guard s.connectFailures > 0 else { return false }
            s.connectFailures -= 1
            return true
        }
        if fail { throw ModbusError(code: .connection, errno: 111, message: "connection refused") }
    }

    func close() { log(.close) }
    func flush() { log(.flush) }

    func setUnit(_ unit: Int) throws(ModbusError) {
        state.withLock {
            $0.unit = unit
            $0.events.append(.unit(unit))
        }
    }

    func setResponseTimeout(ms: Int) {
        state.withLock {
            $0.timeoutMs = ms
            $0.events.append(.timeout(ms))
        }
    }

    func read(_ request: ReadRequest) throws(ModbusError) -> [UInt16] {
        let (unit, behaviour, timeoutMs) = state.withLock { ($0.unit, $0.units[$0.unit], $0.timeoutMs) }
        let start = clock.monotonicNanos()
        var result: Result<[UInt16], ModbusError>
        switch behaviour {
        case .answers(let image)?:
            clock.advance(micros: readCostMicros)
            let words = (request.address..<(request.address + request.count)).map { image[request.table, $0] }
            if words.contains(nil) {
                result = .failure(ModbusError(code: .illegalAddress))
            } else {
                result = .success(words.map { $0! })
            }
        case .dropsConnection?:
            result = .failure(ModbusError(code: .connection, errno: 104))
        case .garbage?:
            clock.advance(micros: readCostMicros)
            result = .failure(ModbusError(code: .badData, message: "invalid reply: MBAP length field 65535"))
        case .silent?, nil:
            clock.advance(ms: Int64(timeoutMs))
            result = .failure(ModbusError(code: .timeout, errno: 110))
        }
        let ok = if case .success = result { true } else { false }
        log(.read(unit: unit, request, startNanos: start, endNanos: clock.monotonicNanos(), ok: ok))
        return try result.get()
    }
}

/// Collects what a poller hands over.
final class PollRecorder: Sendable {
    private let state = Mutex<(polls: [DevicePoll], availability: [(String, Bool, String)])>(([], []))

    func record(_ poll: DevicePoll) { state.withLock { $0.polls.append(poll) } }
    func record(_ device: String, _ online: Bool, _ reason: String) {
        state.withLock { $0.availability.append((device, online, reason)) }
    }

    var polls: [DevicePoll] { state.withLock { $0.polls } }
    func polls(of device: String) -> [DevicePoll] { polls.filter { $0.device == device } }
    func availability(of device: String) -> [Bool] {
        state.withLock { $0.availability.filter { $0.0 == device }.map(\.1) }
    }
}

/// A minimal planner and u16-only decoder, standing in for PantauCore's until they are merged: the poller's
/// behaviour is under test here, not the codec's.
let testCodec = PollCodec(
    plan: { points, timing in
        var requests: [ReadRequest] = []
        for point in points.sorted(by: { ($0.table.rawValue, $0.address) < ($1.table.rawValue, $1.address) }) {
            if let last = requests.last, last.table == point.table,
                point.address - (last.address + last.count) <= timing.maxGap,
                point.address + point.span - last.address <= timing.maxRegistersPerRead
            {
                requests[requests.count - 1].count = max(last.count, point.address + point.span - last.address)
            } else {
                requests.append(ReadRequest(table: point.table, address: point.address, count: point.span))
            }
        }
        return requests
    },
    decode: { profile, image, device, acquiredAt in
        profile.points.map { point in
            let raw = image[point.table, point.address]
            return Reading(
                device: device, point: point.name, quantity: point.quantity, unit: point.unit,
                value: raw.map { .number(Double($0) * point.scale) }, quality: raw == nil ? .deviceError : .good,
                acquiredAt: acquiredAt)
        }
    })

func profile(_ id: String, points: [(String, RegisterTable, Int)], timing: ProfileTiming = ProfileTiming())
    -> DeviceProfile
{
    DeviceProfile(
        id: id, timing: timing,
        points: points.map { PointSpec(name: $0.0, quantity: "counter", table: $0.1, address: $0.2, type: .u16) })
}

let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}()
