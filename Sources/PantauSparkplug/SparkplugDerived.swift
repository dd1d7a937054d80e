import FoundationEssentials
import PantauCore

/// What the gateway computes from a device's readings, as metrics of that device: window aggregates, air-quality
/// indices, flood alert and float switch state, rain. Their names are the SenML contract's topic path and field
/// (docs/mqtt.md), e.g. `aggregates/15m/pm2_5/mean`, `index/ispu`, `alerts/level/level_name`, `rain/mm_24h`.
enum DerivedValue: Equatable {
    case double(Double?)
    case int(Int64?)
    case string(String?)
    case bool(Bool?)

    /// As a reading's value (nil: none), for `SparkplugEdge.metric`.
    var pointValue: PointValue? {
        switch self {
        case .double(let d): d.map(PointValue.number)
        case .int(let i): i.map { .integer(Int128($0)) }
        case .string(let s): s.map(PointValue.text)
        case .bool(let b): b.map(PointValue.flag)
        }
    }
}

extension SparkplugMetricSpec {
    /// Aggregate fields of a numeric point per window: (field, datatype, in the point's unit).
    static let aggregateFields: [(String, SpBDataType, Bool)] = [
        ("count", .int64, false), ("min", .double, true), ("max", .double, true), ("mean", .double, true),
        ("stddev", .double, true), ("coverage", .double, false),
    ]

    /// The derived metrics of a device (without aliases): aggregates of every published point but text for each
    /// window, the indices it computes, the state of each flood alert.
    static func derived(_ device: DeviceConfig, windows: [Interval]) -> [(String, SpBDataType, String)] {
        var out: [(String, SpBDataType, String)] = []
        // Every point with a number: a bit counts as 0 or 1 (its mean is the share of the window it was set).
        let numeric = device.profile.points.filter { $0.publish && datatype(of: $0) != .string }
        for window in windows {
            for point in numeric {
                for (field, type, inUnit) in aggregateFields {
                    out.append(("aggregates/\(window)/\(point.name)/\(field)", type, inUnit ? point.unit : ""))
                }
            }
        }
        for index in device.airQuality?.indices ?? [] {
            let base = "index/\(index.rawValue)"
            let named = index == .ispu ? "critical" : "dominant"
            out += [
                (base, .int64, ""), (base + "/category", .string, ""), (base + "/\(named)", .string, ""),
                (base + "/status", .string, ""),
            ]
        }
        for floatSwitch in device.floatSwitches {
            out.append(("alerts/\(floatSwitch.point)/state", .string, ""))
        }
        if device.rain != nil {
            out += [
                ("rain/mm_interval", .double, "mm"), ("rain/intensity_mm_h", .double, "mm/h"),
                ("rain/mm_24h", .double, "mm"), ("rain/category_hourly", .string, ""),
                ("rain/category_daily", .string, ""),
            ]
        }
        for flood in device.flood {
            let base = "alerts/\(flood.point)"
            let unit = device.profile.points.first { $0.name == flood.point }?.unit ?? ""
            out += [
                (base + "/level", .int64, ""), (base + "/level_name", .string, ""), (base + "/stale", .boolean, ""),
                (base + "/rate_of_rise/active", .boolean, ""), (base + "/value", .double, unit),
            ]
        }
        return out
    }
}

extension SparkplugEdge {
    /// The values of one of the pipeline's intelligence messages (its JSON body, which the gateway made itself), by
    /// metric name, with their time; nil for a message that is not an aggregate, index or flood alert of `device`.
    static func derivedValues(
        _ message: OutboundMessage, device: String
    ) -> (at: UnixMillis, [(String, DerivedValue)])? {
        let parts = message.topic.split(separator: "/", omittingEmptySubsequences: false)
        guard
            let i = parts.indices.dropFirst().dropLast().first(where: {
                parts[$0] == "devices" && parts[$0 + 1] == device
            })
        else { return nil }
        let path = parts[(i + 2)...].filter { !$0.isEmpty }.map(String.init)
        let decoder = JSONDecoder()
        let body = Data(message.body)
        switch (path.first, path.count) {
        case ("aggregates", 2):
            guard let a = try? decoder.decode(AggregatePayload.self, from: body) else { return nil }
            let base = "aggregates/\(a.window)/\(a.point)/"
            return (
                a.end,
                [
                    (base + "count", .int(Int64(a.count))), (base + "min", .double(a.min)),
                    (base + "max", .double(a.max)),
                    (base + "mean", .double(a.mean)), (base + "stddev", .double(a.stddev)),
                    (base + "coverage", .double(a.coverage)),
                ]
            )
        case ("index", 2) where path[1] == "ispu":
            guard let i = try? decoder.decode(ISPUPayload.self, from: body) else { return nil }
            return (
                i.at,
                [
                    ("index/ispu", .int(i.ispu.map(Int64.init))), ("index/ispu/category", .string(i.category)),
                    ("index/ispu/critical", .string(i.critical)), ("index/ispu/status", .string(i.status.rawValue)),
                ]
            )
        case ("index", 2) where path[1] == "aqi":
            guard let i = try? decoder.decode(AQIPayload.self, from: body) else { return nil }
            return (
                i.at,
                [
                    ("index/aqi", .int(i.aqi.map(Int64.init))), ("index/aqi/category", .string(i.category)),
                    ("index/aqi/dominant", .string(i.dominant)), ("index/aqi/status", .string(i.status.rawValue)),
                ]
            )
        case ("alerts", 2):
            // A float switch shares the topic form: its body has a state and no level.
            if let s = try? decoder.decode(FloatSwitchPayload.self, from: body) {
                return (s.at, [("alerts/\(s.point)/state", .string(s.state))])
            }
            guard let f = try? decoder.decode(FloodAlertPayload.self, from: body) else { return nil }
            let base = "alerts/\(f.point)/"
            return (
                f.at,
                [
                    (base + "level", .int(Int64(f.level))), (base + "level_name", .string(f.levelName)),
                    (base + "stale", .bool(f.stale)), (base + "rate_of_rise/active", .bool(f.rateOfRise?.active)),
                    (base + "value", .double(f.value)),
                ]
            )
        case ("rain", 1):
            guard let r = try? decoder.decode(RainPayload.self, from: body) else { return nil }
            return (
                r.at,
                [
                    ("rain/mm_interval", .double(r.mmInterval)), ("rain/intensity_mm_h", .double(r.intensityMmH)),
                    ("rain/mm_24h", .double(r.mm24h)), ("rain/category_hourly", .string(r.categoryHourly)),
                    ("rain/category_daily", .string(r.categoryDaily)),
                ]
            )
        default:
            return nil
        }
    }

    /// An aggregate, index, alert or rain message of the pipeline as the device's DDATA (by alias, like any
    /// DDATA), or nil when it has no metric here (then it stays a Pantau JSON message). The JSON's time quality
    /// (`tq`, put first by the pipeline) becomes each metric's `tq` property; an unsynced one also carries its
    /// boottime (its time less `boottimeOffset`) and `bootId` for `frame` to correct, like a poll's DDATA.
    public func derivedMessage(_ message: OutboundMessage, boottimeOffset: Int64? = nil, bootId: String? = nil)
        -> OutboundMessage?
    {
        guard let device = message.device, let specs = catalog[device],
            let (at, values) = Self.derivedValues(message, device: device),
            !state.withLock({ $0.dead.contains(device) })
        else { return nil }
        let time = TimeMarking.quality(of: message.body)
        let journaled = time == .unsynced && boottimeOffset != nil && bootId != nil
        var payload = SpBPayload()
        payload.timestamp = UInt64(max(at, 0))
        for (name, value) in values {
            guard let spec = specs.first(where: { $0.name == name }) else { continue }
            var m = Self.metric(spec, value: value.pointValue, quality: .good, at: at)
            if let time, time != .synced {
                Self.setProperty(&m, Self.timeQualityProperty, string: time.rawValue)
                if journaled, let offset = boottimeOffset {
                    Self.setProperty(&m, Self.boottimeProperty, long: UInt64(max(at - offset, 0)))
                }
            }
            payload.metrics.append(m)
        }
        guard !payload.metrics.isEmpty else { return nil }
        if journaled, let bootId { payload.uuid = Self.bootPrefix + bootId }
        var out = OutboundMessage(
            kind: message.kind, topic: topics.ddata(device), body: Self.serialize(payload), device: device,
            acquiredAt: message.acquiredAt, contentType: Self.contentType)
        if journaled, let bootId, let offset = boottimeOffset {
            out.stamp = ClockStamp(bootId: bootId, boottimeMs: message.acquiredAt - offset, quality: .unsynced)
        }
        return out
    }
}
