import PantauCore
import SwiftProtobuf

/// One NCMD or DCMD metric set mapped onto the command core (docs/sparkplug.md "Commands"): the `CommandRequest`
/// the MQTT 5 commands use (then the same authoriser, `WritePlan`, bus queue and audit), or why it was refused.
/// `asked` is what the audit event names as the verb: the core verb, or the Sparkplug metric asked for.
public struct SparkplugCommand: Sendable, Hashable {
    public var asked: String
    /// The request as far as it could be read (for the audit event's device, point, value and nonce).
    public var request: CommandRequest?
    /// Set when the command is refused before authorisation (not a command the core knows, or ill-formed).
    public var refusal: CommandRefusal?

    public init(asked: String, request: CommandRequest?, refusal: CommandRefusal?) {
        self.asked = asked
        self.request = request
        self.refusal = refusal
    }
}

/// Reads NCMD and DCMD payloads as hostile input: bounded size and metric count, every metric known by name (or
/// by a DBIRTH alias) and of the datatype the gateway declared, one command per payload.
public enum SparkplugCommandParser {
    /// The largest NCMD/DCMD payload read, in bytes (the MQTT command body bound is 2 KiB of JSON).
    public static let maxPayloadBytes = 2048
    /// Metrics read at most from one payload.
    public static let maxMetrics = 8

    /// The signature of a write, as three metrics of the same DCMD (signed like an MQTT command, docs/mqtt.md).
    public static let timestampMetric = "Pantau/Timestamp"
    public static let nonceMetric = "Pantau/Nonce"
    public static let signatureMetric = "Pantau/Signature"
    /// DCMD `Device Control/Read` = true: the `read` verb (the readings go out as DDATA).
    public static let readMetric = "Device Control/Read"
    /// Node Control metrics of Sparkplug 3.0 that this edge node does not carry out (refused and audited).
    public static let unsupportedNodeControls = [
        "Node Control/Reboot", "Node Control/Next Server", "Node Control/Scan Rate",
    ]

    /// An NCMD: whether it asks for a rebirth (`Node Control/Rebirth` = true), and a refusal for every other metric
    /// (the node has no other command; its signature metrics are ignored).
    public static func parseNodeCommand(_ bytes: [UInt8]) -> (rebirth: Bool, refused: [SparkplugCommand]) {
        let payload: SpBPayload
        switch decode(bytes) {
        case .success(let p): payload = p
        case .failure(let refusal): return (false, [SparkplugCommand(asked: "NCMD", request: nil, refusal: refusal)])
        }
        var rebirth = false
        var refused: [SparkplugCommand] = []
        for metric in payload.metrics {
            let name = metric.hasName ? metric.name : ""
            if name == SparkplugEdge.rebirthMetric {
                guard case .booleanValue(let asked)? = metric.value else {
                    refused.append(refusal(name, .badRequest, "'\(name)' must be a Boolean"))
                    continue
                }
                rebirth = rebirth || asked
            } else if [timestampMetric, nonceMetric, signatureMetric].contains(name) {
                continue
            } else if unsupportedNodeControls.contains(name) {
                refused.append(refusal(name, .unknownVerb, "'\(name)' is not supported by this edge node"))
            } else {
                refused.append(
                    refusal(
                        shown(name), .badRequest,
                        "unknown NCMD metric '\(shown(name))' (known: \(SparkplugEdge.rebirthMetric))"))
            }
        }
        return (rebirth, refused)
    }

    /// A DCMD for `device`: one point metric with a value (`write`) or `Device Control/Read` = true (`read`), and
    /// for a write the three signature metrics. `specs` are the device's DBIRTH metrics (nil: not a device of this
    /// node); a metric may name its point or give the DBIRTH alias, and its datatype must be the declared one.
    public static func parseDeviceCommand(_ bytes: [UInt8], device: String, specs: [SparkplugMetricSpec]?)
        -> SparkplugCommand
    {
        let payload: SpBPayload
        switch decode(bytes) {
        case .success(let p): payload = p
        case .failure(let refusal): return SparkplugCommand(asked: "DCMD", request: nil, refusal: refusal)
        }
        var request = CommandRequest(verb: .write, device: device)
        var action: (verb: CommandVerb, metric: SpBPayload.Metric, spec: SparkplugMetricSpec?)?
        func refuse(_ status: CommandStatus, _ message: String) -> SparkplugCommand {
            SparkplugCommand(
                asked: action?.verb.rawValue ?? "DCMD", request: request, refusal: CommandRefusal(status, message))
        }
        for metric in payload.metrics {
            var name = metric.hasName ? metric.name : nil
            var spec: SparkplugMetricSpec?
            if name == nil, metric.hasAlias {
                spec = specs?.first(where: { $0.alias == metric.alias })
                guard let spec else {
                    return refuse(.badRequest, "alias \(metric.alias) is not a metric of '\(device)'")
                }
                name = spec.name
            }
            guard let name else { return refuse(.badRequest, "a metric has neither a name nor an alias") }
            switch name {
            case timestampMetric:
                guard case .longValue(let ts)? = metric.value, metric.datatypeIs([.uint64, .int64, .dateTime]) else {
                    return refuse(.badRequest, "'\(timestampMetric)' must be a UInt64 of Unix milliseconds")
                }
                request.timestamp = Int64(clamping: ts)
            case nonceMetric, signatureMetric:
                guard case .stringValue(let text)? = metric.value, metric.datatypeIs([.string, .text]) else {
                    return refuse(.badRequest, "'\(name)' must be a String")
                }
                if name == nonceMetric { request.nonce = text } else { request.signature = text }
            default:
                guard action == nil else {
                    return refuse(.badRequest, "one command per DCMD: '\(shown(name))' follows another command metric")
                }
                if name == readMetric {
                    guard case .booleanValue(true)? = metric.value else {
                        return refuse(.badRequest, "'\(readMetric)' must be the Boolean true")
                    }
                    action = (.read, metric, nil)
                } else if name.hasPrefix("Device Control/") || name.hasPrefix("Node Control/")
                    || name.hasPrefix("Pantau/")
                {
                    return refuse(.unknownVerb, "unknown DCMD metric '\(shown(name))'")
                } else {
                    action = (.write, metric, spec ?? specs?.first(where: { $0.name == name }))
                    request.point = String(name.prefix(64))
                }
            }
        }
        guard let action else {
            return refuse(.badRequest, "no command metric (a writable point, or '\(readMetric)')")
        }
        request.verb = action.verb
        if action.verb == .write {
            switch valueText(action.metric, declared: action.spec, point: request.point ?? "") {
            case .success(let text): request.value = text
            case .failure(let refusal):
                return SparkplugCommand(asked: "write", request: request, refusal: refusal)
            }
        }
        switch request.checked() {
        case .success(let checked): return SparkplugCommand(asked: action.verb.rawValue, request: checked, refusal: nil)
        case .failure(let refusal):
            return SparkplugCommand(asked: action.verb.rawValue, request: request, refusal: refusal)
        }
    }

    /// The value as the text the command core checks and signs: `true`/`false`, an integer in decimal, a float or
    /// double as its shortest round-trip decimal (`2.5`, `3.0`, `1e-05`: Python's `repr` gives the same text).
    static func valueText(_ metric: SpBPayload.Metric, declared spec: SparkplugMetricSpec?, point: String)
        -> Result<String, CommandRefusal>
    {
        if metric.hasIsNull, metric.isNull {
            return .failure(CommandRefusal(.badRequest, "'\(point)' has no value (is_null)"))
        }
        let sent = metric.hasDatatype ? SpBDataType(rawValue: Int(metric.datatype)) : nil
        guard let type = sent ?? spec?.datatype else {
            return .failure(CommandRefusal(.badRequest, "'\(point)' has no datatype"))
        }
        if let spec, type != spec.datatype {
            return .failure(
                CommandRefusal(
                    .badRequest, "'\(point)' is sent as \(type), but its DBIRTH declares \(spec.datatype)"))
        }
        let text: String?
        switch (type, metric.value) {
        case (.boolean, .booleanValue(let b)?): text = b ? "true" : "false"
        case (.int8, .intValue(let v)?), (.int16, .intValue(let v)?), (.int32, .intValue(let v)?):
            text = String(Int32(bitPattern: v))
        case (.uint8, .intValue(let v)?), (.uint16, .intValue(let v)?), (.uint32, .intValue(let v)?):
            text = String(v)
        case (.int64, .longValue(let v)?): text = String(Int64(bitPattern: v))
        case (.uint64, .longValue(let v)?): text = String(v)
        case (.float, .floatValue(let f)?): text = f.isFinite ? f.description : nil
        case (.double, .doubleValue(let d)?): text = d.isFinite ? d.description : nil
        default: text = nil
        }
        guard let text else {
            return .failure(
                CommandRefusal(.badRequest, "'\(point)' has no finite \(type) value in the field its datatype uses"))
        }
        return .success(text)
    }

    private static func decode(_ bytes: [UInt8]) -> Result<SpBPayload, CommandRefusal> {
        guard bytes.count <= maxPayloadBytes else {
            return .failure(
                CommandRefusal(.badRequest, "payload is \(bytes.count) bytes, more than \(maxPayloadBytes)"))
        }
        let payload: SpBPayload
        do {
            payload = try SpBPayload(serializedBytes: bytes)
        } catch {
            return .failure(CommandRefusal(.badRequest, "payload is not a Sparkplug B protobuf"))
        }
        guard payload.metrics.count <= maxMetrics else {
            return .failure(
                CommandRefusal(.badRequest, "payload has \(payload.metrics.count) metrics, more than \(maxMetrics)"))
        }
        return .success(payload)
    }

    private static func refusal(_ asked: String, _ status: CommandStatus, _ message: String) -> SparkplugCommand {
        SparkplugCommand(asked: asked, request: nil, refusal: CommandRefusal(status, message))
    }

    /// A name from the wire as shown in a message: at most 64 characters.
    private static func shown(_ name: String) -> String { String(name.prefix(64)) }
}

extension SpBPayload.Metric {
    /// The datatype is absent (the DBIRTH declared it) or one of `types`.
    fileprivate func datatypeIs(_ types: [SpBDataType]) -> Bool {
        guard hasDatatype else { return true }
        return types.contains { UInt32($0.rawValue) == datatype }
    }
}
