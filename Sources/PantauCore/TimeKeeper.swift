/// What the system says about its wall clock at one instant: the wall time, the boot-relative monotonic time
/// (`CLOCK_BOOTTIME`, which keeps counting through a suspend), whether a time source disciplines the clock, and
/// the boot it belongs to.
public struct ClockSample: Sendable, Hashable {
    public var wall: UnixMillis
    /// `CLOCK_BOOTTIME` in milliseconds.
    public var boottimeMs: Int64
    /// The kernel (adjtimex, `STA_UNSYNC` clear) or systemd-timesyncd says the clock is synchronised.
    public var synced: Bool
    /// The kernel's maximum error estimate in milliseconds (adjtimex `maxerror`); nil when unknown.
    public var maxErrorMs: Int64?
    /// `/proc/sys/kernel/random/boot_id`: a reading's boottime means something only within its boot.
    public var bootId: String

    public init(wall: UnixMillis, boottimeMs: Int64, synced: Bool, maxErrorMs: Int64? = nil, bootId: String) {
        self.wall = wall
        self.boottimeMs = boottimeMs
        self.synced = synced
        self.maxErrorMs = maxErrorMs
        self.bootId = bootId
    }
}

/// How far a reading's wall time can be trusted, as published (`tq`, docs/mqtt.md).
public enum TimeQuality: String, Sendable, Hashable, Codable {
    /// Acquired while the clock was synchronised.
    case synced
    /// Acquired before the clock synchronised, corrected afterwards from its boottime (same boot).
    case corrected
    /// Acquired while unsynchronised; not (yet) corrected: its date may be wrong.
    case unsynced
    /// From an earlier boot whose boottime cannot be related to the synchronised clock: never shifted, only marked.
    case unverified
}

/// The gateway's view of its wall clock: a value whose transitions return actions.
///
/// The gateway's timeline is `boottime + offset`. While the clock is synchronised the offset follows the wall clock
/// (NTP slews it, or steps it as a correction). While it is not, the offset stays where it was, so a step of the
/// unsynchronised wall clock (someone's `date -s`, a fake RTC restoring last shutdown's time) moves nothing: windows,
/// rates of rise and rain totals run on boottime. At synchronisation the offset jumps once to the true one; every
/// reading of this boot taken before can then be corrected: `true_wall = boottime_at_acquisition + offset`.
public struct TimeKeeper: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// The wall clock moved against boottime by this many milliseconds between two observations.
        case stepped(byMillis: Int64)
        /// The clock became synchronised; the timeline moved by this many milliseconds.
        case synchronised(correctionMillis: Int64)
        /// The clock lost its synchronisation; the timeline free-runs on boottime from here.
        case lostSync
    }

    /// A change of `wall - boottime` beyond this between two observations is a step, not a slew or jitter.
    public static let stepTolerance: Int64 = 1000

    public private(set) var offset: Int64?
    public private(set) var synced = false
    public private(set) var stepsSeen = 0
    public private(set) var maxErrorMs: Int64?
    public private(set) var bootId: String = ""
    /// How many times the clock went from unsynchronised to synchronised.
    public private(set) var syncs = 0
    private var lastRawOffset: Int64?

    public init() {}

    public mutating func observe(_ sample: ClockSample) -> [Action] {
        var actions: [Action] = []
        let raw = sample.wall - sample.boottimeMs
        if let last = lastRawOffset, abs(raw - last) > Self.stepTolerance {
            stepsSeen += 1
            actions.append(.stepped(byMillis: raw - last))
        }
        lastRawOffset = raw
        maxErrorMs = sample.maxErrorMs
        bootId = sample.bootId
        let previous = offset ?? raw
        if sample.synced {
            if !synced {
                synced = true
                syncs += 1
                actions.append(.synchronised(correctionMillis: raw - previous))
            }
            offset = raw
        } else {
            if synced {
                synced = false
                actions.append(.lostSync)
            }
            offset = previous
        }
        return actions
    }

    /// The timeline's time at a boottime of this boot.
    public func time(atBoottime boottimeMs: Int64) -> UnixMillis { boottimeMs + (offset ?? 0) }

    /// The quality of a time stamped now.
    public var quality: TimeQuality { synced ? .synced : .unsynced }
}

/// How the gateway publishes while its clock is unsynchronised (`time.unsynced`).
public enum UnsyncedTimePolicy: String, Sendable, Hashable, CaseIterable {
    /// Keep the data back until the clock synchronises, then publish it with corrected times (`tq: corrected`).
    case hold
    /// Publish at once, marked `tq: unsynced`.
    case mark
}

/// Adds the time-quality field to a JSON body without re-encoding it: `{"a":1}` becomes `{"tq":"unsynced","a":1}`,
/// `[{"bn":..}]` becomes `[{"tq":"unsynced","bn":..}]` (in a SenML pack, on the first record). Framing later puts
/// `seq` in front of it.
public enum TimeMarking {
    public static func mark(_ body: [UInt8], _ quality: TimeQuality) -> [UInt8] {
        var start = 0
        if body.first == UInt8(ascii: "[") { start = 1 }
        guard body.count > start, body[start] == UInt8(ascii: "{") else { return body }
        let field = Array("\"tq\":\"\(quality.rawValue)\"".utf8)
        var out = Array(body[...start])
        out.append(contentsOf: field)
        let rest = body[(start + 1)...]
        if rest.first != UInt8(ascii: "}") { out.append(UInt8(ascii: ",")) }
        out.append(contentsOf: rest)
        return out
    }
}
