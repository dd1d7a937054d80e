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
    /// Journal only, never in a body: telemetry kept back under `time.unsynced: hold` (its body says `unsynced`).
    /// The journal holds it durably and publishes nothing of it until the clock synchronises; then it becomes
    /// `corrected` (same boot) or `unverified` (an earlier boot) like any `unsynced` record.
    case held
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

    /// Takes up the timeline a previous process of this boot ran on while unsynchronised; before the first
    /// observation only.
    public mutating func resume(offset: Int64) {
        guard self.offset == nil else { return }
        self.offset = offset
    }

    /// The timeline's time at a boottime of this boot.
    public func time(atBoottime boottimeMs: Int64) -> UnixMillis { boottimeMs + (offset ?? 0) }

    /// The quality of a time stamped now.
    public var quality: TimeQuality { synced ? .synced : .unsynced }
}

/// Where a message's time came from: the boot and the `CLOCK_BOOTTIME` its time stands for, and the time quality
/// its body carries (nil: none, a synchronised time). The journal stores it beside the wall time (`boot_id`,
/// `boottime`, `tq`), so a time stamped on an unsynchronised clock can be corrected later, even after a restart
/// within the same boot.
public struct ClockStamp: Sendable, Hashable {
    public var bootId: String
    public var boottimeMs: Int64
    public var quality: TimeQuality?

    public init(bootId: String, boottimeMs: Int64, quality: TimeQuality?) {
        self.bootId = bootId
        self.boottimeMs = boottimeMs
        self.quality = quality
    }
}

/// How the gateway publishes while its clock is unsynchronised (`time.unsynced`).
public enum UnsyncedTimePolicy: String, Sendable, Hashable, CaseIterable {
    /// Keep telemetry back until the clock synchronises, then publish it with corrected times (`tq: corrected`).
    /// Held telemetry is journaled (`tq` held), so a restart before the synchronisation loses none of it.
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

    /// What `mark` puts first in a body's (first) object. Asked of every message the pipeline queues: built once.
    private static let qualityPrefix = Array("{\"tq\":\"".utf8)

    /// The time quality `mark` put in a body, nil when it has none.
    public static func quality(of body: [UInt8]) -> TimeQuality? {
        let start = body.first == UInt8(ascii: "[") ? 1 : 0
        let prefix = qualityPrefix
        guard body.count > start + prefix.count, body[start..<(start + prefix.count)].elementsEqual(prefix) else {
            return nil
        }
        let value = body[(start + prefix.count)...].prefix { $0 != UInt8(ascii: "\"") }
        return TimeQuality(rawValue: String(decoding: value, as: UTF8.self))
    }
}

/// Correcting a message stamped on an unsynchronised clock once the clock's true offset is known (issue 14): the
/// journal does it to what it still holds, across a restart within the same boot.
public enum TimeCorrection {
    /// The keys under which Pantau's JSON bodies carry a time, as integer milliseconds, on their top level.
    static let millisKeys: Set<String> = [
        "ts", "at", "start", "end", "first_at", "last_at", "since", "value_at", "interval_start",
    ]

    /// The message with its times moved onto the synchronised timeline (`tq: corrected`) when it is of `bootId`
    /// and `offset` is known, marked `tq: unverified` without any shift when it is of another boot; nil when there
    /// is nothing to do (not marked `unsynced`, or of this boot while the offset is still unknown).
    /// A `held` message is treated alike: it leaves the hold only with a known time (or marked `unverified`).
    public static func corrected(_ m: OutboundMessage, bootId: String, offset: Int64?) -> OutboundMessage? {
        guard let stamp = m.stamp, stamp.quality == .unsynced || stamp.quality == .held else { return nil }
        var out = m
        // Only a JSON body carries its times as text; any other (a Sparkplug protobuf DDATA) is left as it is,
        // and its sender corrects it when it sends it.
        let json = isJSON(m.contentType)
        if stamp.bootId != bootId {
            if json { out.body = retime(m.body, by: 0, quality: .unverified) }
            out.stamp?.quality = .unverified
            return out
        }
        guard let offset else { return nil }
        let delta = stamp.boottimeMs + offset - m.acquiredAt
        if json { out.body = retime(m.body, by: delta, quality: .corrected) }
        out.acquiredAt = stamp.boottimeMs + offset
        out.stamp?.quality = .corrected
        return out
    }

    /// `application/json` and the `+json` types (`application/senml+json`): the bodies `retime` understands.
    static func isJSON(_ contentType: String) -> Bool {
        contentType == "application/json" || contentType.hasSuffix("+json")
    }

    /// Moves every time of a body by `delta` milliseconds and sets its `tq`, leaving every other byte as it was:
    /// the millisecond keys of a JSON object's top level, or the SenML base time `bt` (seconds) and `tq` of a
    /// pack's first record (the other records' `t` are relative to it).
    public static func retime(_ body: [UInt8], by delta: Int64, quality: TimeQuality) -> [UInt8] {
        // Neither an object nor a pack: nothing of ours to move.
        guard let first = body.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "[") else { return body }
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 8)
        let target = body.first == UInt8(ascii: "[") ? 2 : 1
        var depth = 0
        var objects = 0
        var i = 0
        while i < body.count {
            let c = body[i]
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == target && c == UInt8(ascii: "{") { objects += 1 }
                out.append(c)
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                out.append(c)
                i += 1
            case UInt8(ascii: "\""):
                let start = i
                let end = stringEnd(body, i)
                out.append(contentsOf: body[start..<end])
                i = end
                guard depth == target, objects == 1, i < body.count, body[i] == UInt8(ascii: ":") else { continue }
                let key = String(decoding: body[(start + 1)..<max(start + 1, end - 1)], as: UTF8.self)
                out.append(body[i])
                i += 1
                if key == "tq", i < body.count, body[i] == UInt8(ascii: "\"") {
                    out.append(contentsOf: Array("\"\(quality.rawValue)\"".utf8))
                    i = stringEnd(body, i)
                } else if key == "bt" || millisKeys.contains(key) {
                    var k = i
                    while k < body.count, isNumberByte(body[k]) { k += 1 }
                    let text = String(decoding: body[i..<k], as: UTF8.self)
                    if let moved = shifted(text, seconds: key == "bt", by: delta) {
                        out.append(contentsOf: Array(moved.utf8))
                        i = k
                    }
                }
            default:
                out.append(c)
                i += 1
            }
        }
        return out
    }

    /// The index just past the string that starts at `start` (a quote), escapes skipped.
    private static func stringEnd(_ body: [UInt8], _ start: Int) -> Int {
        var i = start + 1
        while i < body.count {
            if body[i] == UInt8(ascii: "\\") {
                i += 2
            } else if body[i] == UInt8(ascii: "\"") {
                return i + 1
            } else {
                i += 1
            }
        }
        return body.count
    }

    private static func isNumberByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
            || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+")
    }

    /// A JSON number moved by `delta` milliseconds: integer milliseconds, or seconds with up to three decimals.
    static func shifted(_ text: String, seconds: Bool, by delta: Int64) -> String? {
        guard seconds else { return Int64(text).map { String($0 + delta) } }
        guard let value = Double(text), value.isFinite, abs(value) < 1e15 else { return nil }
        let millis = Int64((value * 1000).rounded()) + delta
        let whole = millis / 1000
        let fraction = abs(millis % 1000)
        let sign = millis < 0 && whole == 0 ? "-" : ""
        guard fraction != 0 else { return "\(sign)\(whole)" }
        var digits = String("\(1000 + fraction)".dropFirst())
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(sign)\(whole).\(digits)"
    }
}
