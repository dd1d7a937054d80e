import PantauCore
import SwiftProtobuf
import Synchronization

/// One metric of a device as its DBIRTH declares it: name, alias, Sparkplug datatype and engineering unit.
public struct SparkplugMetricSpec: Sendable, Hashable {
    public var name: String
    public var alias: UInt64
    var datatype: SpBDataType
    public var unit: String

    /// The Sparkplug datatype of a profile point: text and bits as String and Boolean, an unscaled integer as
    /// itself (UInt16, UInt32, UInt64, Int64; a signed 16- or 32-bit one as Int32, whose two's complement in
    /// `int_value` every implementation reads alike), every other number as Double (scale and offset make it one).
    /// A 16-bit count takes 3 bytes on the wire as UInt16, 9 as a Double.
    static func datatype(of point: PointSpec) -> SpBDataType {
        let unscaled = point.scale == 1 && point.offset == 0
        switch point.type {
        case .string: return .string
        case .bit: return .boolean
        case .u16 where unscaled: return .uint16
        case .u32 where unscaled: return .uint32
        case .i16 where unscaled, .i32 where unscaled: return .int32
        case .u64 where unscaled: return .uint64
        case .i64 where unscaled: return .int64
        default: return .double
        }
    }
}

/// The Sparkplug B edge node's birth and sequence state (Sparkplug 3.0): bdSeq of the current connection, the
/// message seq 0-255, the alias table and the last value of every metric (for the next birth). The pipeline builds
/// DDATA bodies with `data(...)` at acquisition time; the publisher asks for the Will, the births and the framing of
/// each message at send time. Thread-safe.
public final class SparkplugEdge: Sendable {
    public static let bdSeqMetric = "bdSeq"
    public static let rebirthMetric = "Node Control/Rebirth"
    /// The journal state key that keeps bdSeq across restarts.
    public static let bdSeqStateKey = "sparkplug.bdseq"

    public let topics: SparkplugTopics
    /// Device name to its metrics, in profile order.
    public let catalog: [String: [SparkplugMetricSpec]]
    private let saveBdSeq: @Sendable (UInt64) -> Void
    /// Told about STATE messages that were ignored (malformed, or older than the last).
    let warn: @Sendable (String) -> Void

    struct State {
        var bdSeq: UInt64
        var seq: UInt64 = 0
        var last: [UInt64: SpBPayload.Metric] = [:]
        /// Devices whose DDEATH is queued and no DBIRTH since: they publish no DDATA.
        var dead: Set<String> = []
        /// Births and data wait for the primary host (`sparkplug.primary_host_id`).
        var session: PrimaryHostSession
        /// The clock as the pipeline last saw it: this boot, and the synchronised clock's offset from boottime
        /// (nil while unsynchronised). `frame` corrects unsynced metrics with it.
        var bootId: String?
        var syncedOffset: Int64?
    }

    /// The time-quality property of a metric (`synced` is never sent: no property means a trusted time).
    public static let timeQualityProperty = "tq"
    /// Journal-only: the boottime of an unsynced metric, and the boot (payload `uuid`); removed by `frame`.
    static let boottimeProperty = "Pantau/boottime"
    static let bootPrefix = "pantau-boot:"
    let state: Mutex<State>
    /// Where NCMD/DCMD commands go (the gateway's command center), once wired.
    let commandHandler = Mutex<(@Sendable (SparkplugCommand, Bool) -> Void)?>(nil)

    /// `savedBdSeq` is the bdSeq of the last Will (from the journal); `saveBdSeq` persists a new one. With a
    /// `primaryHostId` the births wait for that host's STATE to say online. `windows` are the aggregation windows
    /// (each numeric point has aggregate metrics per window).
    public init(
        topics: SparkplugTopics, devices: [DeviceConfig], windows: [Interval] = [], savedBdSeq: UInt64?,
        primaryHostId: String? = nil, saveBdSeq: @escaping @Sendable (UInt64) -> Void,
        warn: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.topics = topics
        self.saveBdSeq = saveBdSeq
        self.warn = warn
        var catalog: [String: [SparkplugMetricSpec]] = [:]
        // Aliases 0 and 1 are the node's bdSeq and rebirth metrics; device metrics follow in device name order.
        var alias: UInt64 = 2
        for device in devices.sorted(by: { $0.name < $1.name }) {
            var specs = device.profile.points.filter(\.publish).map { point in
                defer { alias += 1 }
                return SparkplugMetricSpec(
                    name: point.name, alias: alias, datatype: SparkplugMetricSpec.datatype(of: point), unit: point.unit)
            }
            // Then what the gateway computes from them: aggregates, indices, flood alert state.
            for (name, datatype, unit) in SparkplugMetricSpec.derived(device, windows: windows) {
                specs.append(SparkplugMetricSpec(name: name, alias: alias, datatype: datatype, unit: unit))
                alias += 1
            }
            catalog[device.name] = specs
        }
        self.catalog = catalog
        state = Mutex(State(bdSeq: savedBdSeq ?? 255, session: PrimaryHostSession(hostId: primaryHostId)))
    }

    public var bdSeq: UInt64 { state.withLock { $0.bdSeq } }

    // MARK: Acquisition time

    /// The DDATA body of one poll: metrics by alias, with their acquisition time, datatype and value; a reading that
    /// is not good carries its quality as a property, one without a value `is_null`. No seq yet (`frame` adds it).
    /// A time not known to be true carries the property `tq` (`unsynced`, `corrected`); an unsynced one also its
    /// `boottimes` entry and `bootId` (journal-only, so `frame` can correct it once the clock is synchronised).
    public func data(
        _ readings: [Reading], device: String, time: TimeQuality? = nil, boottimes: [Int64] = [], bootId: String? = nil
    ) -> [UInt8]? {
        guard let specs = catalog[device], !state.withLock({ $0.dead.contains(device) }) else { return nil }
        var payload = SpBPayload()
        for (index, reading) in readings.enumerated() {
            guard let spec = specs.first(where: { $0.name == reading.point }) else { continue }
            // By alias, without name or datatype: the DBIRTH declared both (the datatype SHOULD NOT be repeated).
            var m = Self.metric(spec, value: reading.value, quality: reading.quality, at: reading.acquiredAt)
            if let time, time != .synced {
                Self.setProperty(&m, Self.timeQualityProperty, string: time.rawValue)
                if time == .unsynced, bootId != nil, index < boottimes.count {
                    Self.setProperty(&m, Self.boottimeProperty, long: UInt64(max(boottimes[index], 0)))
                }
            }
            payload.metrics.append(m)
        }
        guard !payload.metrics.isEmpty else { return nil }
        payload.timestamp = UInt64(max(readings[0].acquiredAt, 0))
        if time == .unsynced, let bootId { payload.uuid = Self.bootPrefix + bootId }
        return Self.serialize(payload)
    }

    /// The clock as the pipeline sees it (each poll and tick): unsynced metrics framed after this are corrected
    /// from their boottime when `syncedOffset` is known and they are of `bootId`, marked `unverified` otherwise.
    public func observeClock(bootId: String, syncedOffset: Int64?) {
        state.withLock { s in
            s.bootId = bootId
            s.syncedOffset = syncedOffset
        }
    }

    /// Sets (or replaces) a metric property.
    static func setProperty(_ m: inout SpBPayload.Metric, _ key: String, string: String? = nil, long: UInt64? = nil) {
        var props = m.hasProperties ? m.properties : SpBPayload.PropertySet()
        var value = SpBPayload.PropertyValue()
        if let string {
            value.type = UInt32(SpBDataType.string.rawValue)
            value.stringValue = string
        } else if let long {
            value.type = UInt32(SpBDataType.uint64.rawValue)
            value.longValue = long
        }
        if let i = props.keys.firstIndex(of: key) {
            props.values[i] = value
        } else {
            props.keys.append(key)
            props.values.append(value)
        }
        m.properties = props
    }

    /// A journaled DDATA's unsynced times as the clock now allows: corrected from boottime (`tq: corrected`) when
    /// the clock is synchronised and the metric is of this boot, marked `tq: unverified` and never shifted when
    /// it is of another boot, left `unsynced` while the clock is not synchronised. The journal-only boottime and
    /// boot are removed.
    static func retime(_ payload: inout SpBPayload, bootId: String?, syncedOffset: Int64?) {
        let boot = payload.uuid.hasPrefix(bootPrefix) ? String(payload.uuid.dropFirst(bootPrefix.count)) : nil
        payload.clearUuid()
        var first: UInt64?
        for i in payload.metrics.indices where payload.metrics[i].hasProperties {
            var props = payload.metrics[i].properties
            guard let k = props.keys.firstIndex(of: boottimeProperty) else { continue }
            let boottime = Int64(clamping: props.values[k].longValue)
            props.keys.remove(at: k)
            props.values.remove(at: k)
            payload.metrics[i].properties = props
            guard let offset = syncedOffset else { continue }
            if let boot, boot == bootId {
                payload.metrics[i].timestamp = UInt64(max(boottime + offset, 0))
                first = first ?? payload.metrics[i].timestamp
                setProperty(&payload.metrics[i], timeQualityProperty, string: TimeQuality.corrected.rawValue)
            } else {
                setProperty(&payload.metrics[i], timeQualityProperty, string: TimeQuality.unverified.rawValue)
            }
        }
        if let first { payload.timestamp = first }
    }

    /// A metric by alias (a DBIRTH adds its name and datatype), its value in the field its datatype uses.
    static func metric(
        _ spec: SparkplugMetricSpec, value: PointValue?, quality: Quality, at time: UnixMillis
    ) -> SpBPayload.Metric {
        var m = SpBPayload.Metric()
        m.alias = spec.alias
        m.timestamp = UInt64(max(time, 0))
        if !set(&m, spec.datatype, value) { m.isNull = true }
        if quality != .good {
            var props = SpBPayload.PropertySet()
            props.keys = ["Quality"]
            var q = SpBPayload.PropertyValue()
            q.type = UInt32(SpBDataType.string.rawValue)
            q.stringValue = quality.rawValue
            props.values = [q]
            m.properties = props
        }
        return m
    }

    /// Writes the value in the field its datatype uses; false when there is none to write.
    private static func set(_ m: inout SpBPayload.Metric, _ type: SpBDataType, _ value: PointValue?) -> Bool {
        switch (type, value) {
        case (.string, .text(let s)?): m.stringValue = s
        case (.boolean, .flag(let b)?): m.booleanValue = b
        case (.boolean, .number(let d)?): m.booleanValue = d != 0
        case (.uint16, .number(let d)?):
            guard let u = UInt16(exactly: d) else { return false }
            m.intValue = UInt32(u)
        case (.uint32, .number(let d)?):
            guard let u = UInt32(exactly: d) else { return false }
            m.intValue = u
        case (.int32, .number(let d)?):
            guard let i = Int32(exactly: d) else { return false }
            m.intValue = UInt32(bitPattern: i)
        case (.uint64, .number(let d)?):
            guard let u = UInt64(exactly: d) else { return false }
            m.longValue = u
        case (.uint64, .integer(let i)?):
            guard let u = UInt64(exactly: i) else { return false }
            m.longValue = u
        // Sparkplug carries a signed 64-bit integer as its two's complement in long_value.
        case (.int64, .number(let d)?):
            guard let s = Int64(exactly: d) else { return false }
            m.longValue = UInt64(bitPattern: s)
        case (.int64, .integer(let i)?):
            guard let s = Int64(exactly: i) else { return false }
            m.longValue = UInt64(bitPattern: s)
        case (.double, let v?):
            guard let d = v.numeric, d.isFinite else { return false }
            m.doubleValue = d
        default: return false
        }
        return true
    }

    // MARK: Send time

    /// The NDEATH for the next connection attempt, registered as its Will: a new bdSeq (0-255), persisted first so
    /// that the NBIRTH after a restart never repeats it.
    public func nextWill() -> (topic: String, payload: [UInt8]) {
        let bdSeq = state.withLock { s -> UInt64 in
            s.session.connecting()
            s.bdSeq = (s.bdSeq + 1) % 256
            return s.bdSeq
        }
        saveBdSeq(bdSeq)
        return (topics.ndeath, death(bdSeq: bdSeq))
    }

    /// The NDEATH of the current connection (a clean stop publishes it before disconnecting).
    public func currentDeath() -> (topic: String, payload: [UInt8]) { (topics.ndeath, death(bdSeq: bdSeq)) }

    private func death(bdSeq: UInt64) -> [UInt8] {
        var payload = SpBPayload()
        var m = SpBPayload.Metric()
        m.name = Self.bdSeqMetric
        m.datatype = UInt32(SpBDataType.int64.rawValue)
        m.longValue = bdSeq
        payload.metrics = [m]
        return Self.serialize(payload)
    }

    /// NBIRTH (seq 0, bdSeq of the current Will, the rebirth control) then a DBIRTH per device with every metric's
    /// name, alias, datatype, last value (null before the first) and engineering unit.
    public func births(at now: UnixMillis) -> [(topic: String, payload: [UInt8])] {
        state.withLock { s in
            s.seq = 0
            var out: [(String, [UInt8])] = []
            var nbirth = SpBPayload()
            nbirth.timestamp = UInt64(max(now, 0))
            nbirth.seq = 0
            var bd = SpBPayload.Metric()
            bd.name = Self.bdSeqMetric
            bd.alias = 0
            bd.timestamp = nbirth.timestamp
            bd.datatype = UInt32(SpBDataType.int64.rawValue)
            bd.longValue = s.bdSeq
            var rebirth = SpBPayload.Metric()
            rebirth.name = Self.rebirthMetric
            rebirth.alias = 1
            rebirth.timestamp = nbirth.timestamp
            rebirth.datatype = UInt32(SpBDataType.boolean.rawValue)
            rebirth.booleanValue = false
            nbirth.metrics = [bd, rebirth]
            out.append((topics.nbirth, Self.serialize(nbirth)))
            for device in catalog.keys.sorted() {
                s.seq = (s.seq + 1) % 256
                out.append((topics.dbirth(device), deviceBirth(device, seq: s.seq, at: now, last: s.last)))
            }
            return out
        }
    }

    /// A DBIRTH: every metric of the device with its name, alias, datatype, last value (null before the first)
    /// and engineering unit (property `engUnit`).
    private func deviceBirth(
        _ device: String, seq: UInt64, at now: UnixMillis, last: [UInt64: SpBPayload.Metric]
    ) -> [UInt8] {
        var dbirth = SpBPayload()
        dbirth.timestamp = UInt64(max(now, 0))
        dbirth.seq = seq
        dbirth.metrics = (catalog[device] ?? []).map { spec in
            var m = last[spec.alias] ?? Self.metric(spec, value: nil, quality: .good, at: now)
            m.name = spec.name
            m.datatype = UInt32(spec.datatype.rawValue)
            m.clearIsHistorical()
            var props = m.hasProperties ? m.properties : SpBPayload.PropertySet()
            props.keys.append("engUnit")
            var unit = SpBPayload.PropertyValue()
            unit.type = UInt32(SpBDataType.string.rawValue)
            unit.stringValue = spec.unit
            props.values.append(unit)
            m.properties = props
            return m
        }
        return Self.serialize(dbirth)
    }

    /// The queued message for a device that went offline (DDEATH) or came back (DBIRTH, its metrics filled in at
    /// send time by `frame`).
    public func availabilityMessage(device: String, online: Bool, at now: UnixMillis) -> OutboundMessage? {
        guard catalog[device] != nil else { return nil }
        state.withLock { s in
            if online { s.dead.remove(device) } else { s.dead.insert(device) }
        }
        var payload = SpBPayload()
        payload.timestamp = UInt64(max(now, 0))
        // The telemetry lane: the journal offers each lane in order, and a DDEATH must not overtake the DDATA of
        // the poll that found the device silent (nor a DBIRTH trail its first DDATA).
        return OutboundMessage(
            kind: .telemetry, topic: online ? topics.dbirth(device) : topics.ddeath(device),
            body: Self.serialize(payload), device: device, acquiredAt: now, contentType: Self.contentType)
    }

    /// A DDATA body from the journal as sent: the next seq, and `is_historical` on every metric of backlog. Live
    /// values are remembered for the next birth.
    public func frame(_ body: [UInt8], topic: String, historical: Bool) -> [UInt8] {
        guard var payload = try? SpBPayload(serializedBytes: body) else { return body }
        return state.withLock { s in
            s.seq = (s.seq + 1) % 256
            if let device = catalog.keys.first(where: { topics.dbirth($0) == topic }) {
                return deviceBirth(device, seq: s.seq, at: UnixMillis(payload.timestamp), last: s.last)
            }
            payload.seq = s.seq
            Self.retime(&payload, bootId: s.bootId, syncedOffset: s.syncedOffset)
            for i in payload.metrics.indices {
                if historical {
                    payload.metrics[i].isHistorical = true
                } else {
                    s.last[payload.metrics[i].alias] = payload.metrics[i]
                }
            }
            return Self.serialize(payload)
        }
    }

    static func serialize(_ payload: SpBPayload) -> [UInt8] {
        // Serializing a message of plain fields cannot fail; a failure is a programming error.
        do { return try payload.serializedBytes() } catch { preconditionFailure("protobuf encoding failed: \(error)") }
    }
}
