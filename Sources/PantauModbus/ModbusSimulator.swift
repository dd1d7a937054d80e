import Logging
import PantauCore
import PantauPlatform
import Synchronization

/// Simulated Modbus devices for `pantau simulate`, the demo and integration tests, served by libmodbus's server
/// side over TCP (dispatch by the request's unit id) and RTU (on a tty, e.g. one end of a socat pty pair).
/// Values follow a `SimulatedSignal` per point and are computed when a request arrives.
public final class ModbusSimulator: Sendable {
    struct Unit {
        var profile: DeviceProfile?
        var signals: [String: SimulatedSignal] = [:]
        /// Raw registers that win over any signal (fixed images for tests).
        var pinned = RegisterImage()
        var silent = false
    }

    let clock: any GatewayClock
    let logger: Logger
    let start: UnixMillis
    let riverLevelMeters: Double
    let units: Mutex<[Int: Unit]>
    let stopping = Atomic<Bool>(false)
    let threads = Mutex<[OwnedThread]>([])

    /// Devices whose values follow their quantities' plausible signals; water levels start at `riverLevelMeters`.
    public init(
        devices: [(unit: Int, profile: DeviceProfile)], clock: any GatewayClock, logger: Logger,
        riverLevelMeters: Double = 1.5
    ) {
        self.clock = clock
        self.logger = logger
        self.start = clock.now()
        self.riverLevelMeters = riverLevelMeters
        var table: [Int: Unit] = [:]
        for device in devices { table[device.unit] = Unit(profile: device.profile) }
        units = Mutex(table)
    }

    /// Devices that hold fixed raw registers and nothing else.
    public convenience init(fixed: [(unit: Int, image: RegisterImage)], clock: any GatewayClock, logger: Logger) {
        self.init(devices: [], clock: clock, logger: logger)
        for device in fixed { pin(unit: device.unit, image: device.image) }
    }

    /// Fixes raw registers of a unit (creating a profile-less unit if needed); they win over signals.
    public func pin(unit: Int, image: RegisterImage) {
        units.withLock { units in
            var u = units[unit] ?? Unit()
            for (table, words) in image.tables {
                for (address, word) in words { u.pinned[table, address] = word }
            }
            units[unit] = u
        }
    }

    /// Replaces the signal of one point (a scripted river for a flood test); nil returns to the default.
    public func setSignal(unit: Int, point: String, _ signal: SimulatedSignal?) {
        units.withLock { $0[unit]?.signals[point] = signal }
    }

    /// A silent unit never answers, like a device with a cut cable.
    public func setSilent(unit: Int, _ silent: Bool) {
        units.withLock { $0[unit]?.silent = silent }
    }

    /// The unit ids served.
    public var unitIds: [Int] { units.withLock { $0.keys.sorted() } }

    /// The registers a unit serves at `time`; nil for an unknown unit.
    public func image(unit: Int, at time: UnixMillis) -> RegisterImage? {
        guard let u = units.withLock({ $0[unit] }) else { return nil }
        return render(u, at: time)
    }

    /// Stops every server and waits for its threads.
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        // Servers register the client threads they start; join until none is left.
        while true {
            let pending = threads.withLock { t -> [OwnedThread] in
                defer { t = [] }
                return t
            }
            if pending.isEmpty { break }
            for thread in pending { thread.join() }
        }
    }

    var isStopping: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    func startThread(_ body: @escaping @Sendable () -> Void) {
        let thread = OwnedThread(body)
        threads.withLock { $0.append(thread) }
    }

    /// What a request for `unit` finds: nil when the unit is unknown, `.silent` when it must not answer.
    enum Lookup {
        case unknown
        case silent
        case image(RegisterImage)
    }

    func lookup(unit: Int) -> Lookup {
        guard let u = units.withLock({ $0[unit] }) else { return .unknown }
        if u.silent { return .silent }
        return .image(render(u, at: clock.now()))
    }

    private func render(_ unit: Unit, at time: UnixMillis) -> RegisterImage {
        var image = RegisterImage()
        for point in unit.profile?.points ?? [] {
            let signal =
                unit.signals[point.name]
                ?? SimulatedSignal.plausible(for: point, start: start, riverLevelMeters: riverLevelMeters)
            let words = RegisterEncoder.encode(point: point, value: Self.pointValue(point, signal.value(time)))
            if point.type == .bit, !point.table.isBitTable, let bit = point.bit {
                let current = image[point.table, point.address] ?? 0
                let on = (words.first ?? 0) & 1
                image[point.table, point.address] = (current & ~(1 << UInt16(bit))) | (on << UInt16(bit))
            } else {
                image.store(words, table: point.table, at: point.address)
            }
        }
        for (table, words) in unit.pinned.tables {
            for (address, word) in words { image[table, address] = word }
        }
        return image
    }

    private static func pointValue(_ point: PointSpec, _ value: Double) -> PointValue {
        switch point.type {
        case .bit: return .flag(value != 0)
        case .string: return .text(String("PANTAU-SIM".prefix(point.length * 2)))
        default: return .number(value)
        }
    }
}
