import PantauCore
import PantauMQTT
import Synchronization
import Testing

@testable import PantauSparkplug

private let profile = DeviceProfile(
    id: "pump", manufacturer: "T", model: "P", source: "unit test",
    points: [
        PointSpec(
            name: "setpoint", quantity: "water_level", table: .holding, address: 10, type: .u16, scale: 0.01,
            unit: "m"),
        PointSpec(name: "limit", quantity: "water_level", table: .holding, address: 12, type: .u16, unit: "m"),
        PointSpec(name: "offset", quantity: "x", table: .holding, address: 14, type: .i16, unit: ""),
    ])

private let device = DeviceConfig(name: "pump-1", bus: "net", unitId: 1, profile: profile, pollInterval: .seconds(5))

private func edge() -> SparkplugEdge {
    SparkplugEdge(
        topics: SparkplugTopics(group: "g", edgeNode: "e"), devices: [device], savedBdSeq: nil, saveBdSeq: { _ in })
}

private func metric(_ name: String?, _ type: SpBDataType?, _ set: (inout SpBPayload.Metric) -> Void)
    -> SpBPayload.Metric
{
    var m = SpBPayload.Metric()
    if let name { m.name = name }
    if let type { m.datatype = UInt32(type.rawValue) }
    set(&m)
    return m
}

private let signature = [
    metric("Pantau/Timestamp", .uint64) { $0.longValue = 1_800_000_000_000 },
    metric("Pantau/Nonce", .string) { $0.stringValue = "nonce-0001" },
    metric("Pantau/Signature", .string) { $0.stringValue = String(repeating: "AB", count: 32) },
]

private func bytes(_ metrics: [SpBPayload.Metric]) -> [UInt8] {
    var payload = SpBPayload()
    payload.timestamp = 1_800_000_000_000
    payload.metrics = metrics
    return SparkplugEdge.serialize(payload)
}

private func dcmd(_ metrics: [SpBPayload.Metric], device name: String = "pump-1") -> SparkplugCommand {
    SparkplugCommandParser.parseDeviceCommand(bytes(metrics), device: name, specs: edge().catalog[name])
}

@Suite("Sparkplug NCMD/DCMD mapped onto the command core")
struct SparkplugCommandTests {
    @Test("a DCMD point metric with the signature metrics is the same write request as the MQTT command")
    func writeMapsOntoTheCoreRequest() throws {
        let command = dcmd([metric("setpoint", .double) { $0.doubleValue = 2.5 }] + signature)
        #expect(command.refusal == nil)
        let request = try #require(command.request)
        #expect(command.asked == "write")
        #expect(
            request
                == CommandRequest(
                    verb: .write, device: "pump-1", point: "setpoint", value: "2.5", timestamp: 1_800_000_000_000,
                    nonce: "nonce-0001", signature: String(repeating: "ab", count: 32)))
        // The signed text is the MQTT command's: one key signs both, one nonce memory refuses a replay across them.
        #expect(
            CommandAuthorizer.signedText(request, target: "s/g")
                == "pantau-cmd-v1\nwrite\ns/g\ndevice=pump-1&point=setpoint&value=2.5\n1800000000000\nnonce-0001")
    }

    @Test("a metric by DBIRTH alias, without name or datatype, takes the declared ones")
    func byAlias() throws {
        let alias = try #require(edge().catalog["pump-1"]?.first(where: { $0.name == "limit" })?.alias)
        let command = dcmd([
            metric(nil, nil) {
                $0.alias = alias
                $0.intValue = 9
            }
        ])
        #expect(command.refusal == nil)
        #expect(command.request?.point == "limit" && command.request?.value == "9")
        #expect(command.request?.isSigned == false)
    }

    @Test("values become the text the core checks and signs")
    func valueTexts() {
        #expect(dcmd([metric("offset", .int32) { $0.intValue = UInt32(bitPattern: -7) }]).request?.value == "-7")
        #expect(dcmd([metric("setpoint", .double) { $0.doubleValue = 3 }]).request?.value == "3.0")
        #expect(dcmd([metric("setpoint", .double) { $0.doubleValue = 0.00001 }]).request?.value == "1e-05")
        // An unpublished or unknown point: its own datatype is read; WritePlan refuses it later.
        #expect(dcmd([metric("valve", .boolean) { $0.booleanValue = true }]).request?.value == "true")
    }

    @Test("Device Control/Read is the read verb")
    func read() {
        let command = dcmd([metric("Device Control/Read", .boolean) { $0.booleanValue = true }])
        #expect(command.refusal == nil && command.asked == "read")
        #expect(command.request == CommandRequest(verb: .read, device: "pump-1"))
    }

    @Test(
        "ill-formed DCMDs are refused with a reason",
        arguments: [
            ([metric("setpoint", .float) { $0.floatValue = 2.5 }], "is sent as float, but its DBIRTH declares double"),
            ([metric("setpoint", .double) { $0.intValue = 2 }], "no finite double value"),
            ([metric("setpoint", .double) { $0.doubleValue = .nan }], "no finite double value"),
            ([metric("setpoint", .double) { $0.isNull = true }], "has no value (is_null)"),
            ([metric(nil, nil) { $0.alias = 999 }], "alias 999 is not a metric of 'pump-1'"),
            ([metric(nil, nil) { _ in }], "neither a name nor an alias"),
            (
                [metric("limit", nil) { $0.intValue = 1 }, metric("setpoint", nil) { $0.doubleValue = 1 }],
                "one command per DCMD"
            ),
            ([metric("Device Control/Reboot", .boolean) { $0.booleanValue = true }], "unknown DCMD metric"),
            ([metric("Device Control/Read", .boolean) { $0.booleanValue = false }], "must be the Boolean true"),
            (signature, "no command metric"),
            (
                [metric("limit", nil) { $0.intValue = 1 }, metric("Pantau/Nonce", .int64) { $0.longValue = 1 }],
                "'Pantau/Nonce' must be a String"
            ),
            (
                [
                    metric("limit", nil) { $0.intValue = 1 },
                    metric("Pantau/Timestamp", .string) { $0.stringValue = "1" },
                ],
                "'Pantau/Timestamp' must be a UInt64"
            ),
            (
                [metric("limit", nil) { $0.intValue = 1 }, metric("Pantau/Nonce", .string) { $0.stringValue = "a b" }],
                "'nonce' must be 8-64"
            ),
            ([metric("aggregates/1m/limit/mean", .double) { $0.doubleValue = 1 }], "'point' must be 1-64"),
        ])
    func refusals(metrics: [SpBPayload.Metric], reason: String) {
        let command = dcmd(metrics)
        #expect(command.refusal?.status == .badRequest || command.refusal?.status == .unknownVerb)
        #expect(command.refusal?.message.contains(reason) == true, "\(command.refusal?.message ?? "accepted")")
    }

    @Test("hostile bytes: not protobuf, too large, too many metrics")
    func hostileBytes() {
        let garbage = SparkplugCommandParser.parseDeviceCommand([0xFF, 0xFF, 0xFF], device: "pump-1", specs: nil)
        #expect(garbage.refusal == CommandRefusal(.badRequest, "payload is not a Sparkplug B protobuf"))
        let large = SparkplugCommandParser.parseDeviceCommand(
            [UInt8](repeating: 0, count: 2049), device: "pump-1", specs: nil)
        #expect(large.refusal == CommandRefusal(.badRequest, "payload is 2049 bytes, more than 2048"))
        let many = dcmd(Array(repeating: metric("Pantau/Nonce", .string) { $0.stringValue = "nonce-0001" }, count: 9))
        #expect(many.refusal == CommandRefusal(.badRequest, "payload has 9 metrics, more than 8"))
    }

    @Test("NCMD: Rebirth stays; Reboot, Next Server and Scan Rate are refused; unknown metrics too")
    func nodeCommands() {
        let rebirth = SparkplugCommandParser.parseNodeCommand(
            bytes([metric("Node Control/Rebirth", .boolean) { $0.booleanValue = true }]))
        #expect(rebirth.rebirth && rebirth.refused.isEmpty)
        let others = SparkplugCommandParser.parseNodeCommand(
            bytes([
                metric("Node Control/Reboot", .boolean) { $0.booleanValue = true },
                metric("Node Control/Scan Rate", .int64) { $0.longValue = 1000 },
                metric("Something", .boolean) { $0.booleanValue = true },
            ]))
        #expect(!others.rebirth)
        #expect(
            others.refused.map { "\($0.asked) \($0.refusal?.status.rawValue ?? "")" } == [
                "Node Control/Reboot unknown_verb", "Node Control/Scan Rate unknown_verb", "Something bad_request",
            ])
        #expect(SparkplugCommandParser.parseNodeCommand([0xFF]).refused.first?.refusal?.status == .badRequest)
    }

    @Test("the edge subscribes DCMD and hands commands over only once wired")
    func wiring() {
        let e = edge()
        #expect(e.subscriptions == ["spBv1.0/g/NCMD/e"])
        let seen = Mutex<[String]>([])
        e.onCommand { command, retained in seen.withLock { $0.append("\(command.asked) \(retained)") } }
        #expect(e.subscriptions == ["spBv1.0/g/NCMD/e", "spBv1.0/g/DCMD/e/+"])
        let write = bytes([metric("limit", .uint16) { $0.intValue = 9 }])
        #expect(e.inbound(MQTTMessage(topic: "spBv1.0/g/DCMD/e/pump-1", payload: write, qos: 1, retain: true)) == .none)
        #expect(
            e.inbound(MQTTMessage(topic: "spBv1.0/g/DCMD/other/pump-1", payload: write, qos: 1, retain: false)) == .none
        )
        let reboot = bytes([metric("Node Control/Reboot", .boolean) { $0.booleanValue = true }])
        #expect(e.inbound(MQTTMessage(topic: "spBv1.0/g/NCMD/e", payload: reboot, qos: 1, retain: false)) == .none)
        #expect(seen.withLock { $0 } == ["write true", "Node Control/Reboot false"])
        #expect(SparkplugTopics(group: "g", edgeNode: "e").dcmdDevice("spBv1.0/g/DCMD/e/a/b") == nil)
    }
}

@Suite("Sparkplug DDATA time quality (issue 14)")
struct SparkplugTimeQualityTests {
    private func reading(_ at: UnixMillis) -> Reading {
        Reading(
            device: "pump-1", point: "limit", quantity: "x", unit: "m", value: .number(7), quality: .good,
            acquiredAt: at)
    }

    private func framed(_ e: SparkplugEdge, _ body: [UInt8]) throws -> SpBPayload {
        try SpBPayload(serializedBytes: e.frame(body, topic: "spBv1.0/g/DDATA/e/pump-1", historical: true))
    }

    private func tq(_ m: SpBPayload.Metric) -> String? {
        m.properties.keys.firstIndex(of: "tq").map { m.properties.values[$0].stringValue }
    }

    @Test("unsynced metrics are marked, then corrected from boottime at send time once the clock is synchronised")
    func correctedFromBoottime() throws {
        let e = edge()
        // Acquired at 1970 + 10 s on the boot clock's timeline, 5 s after boot.
        let body = try #require(
            e.data([reading(10_000)], device: "pump-1", time: .unsynced, boottimes: [5_000], bootId: "boot-a"))
        e.observeClock(bootId: "boot-a", syncedOffset: nil)
        let unsynced = try framed(e, body)
        #expect(unsynced.metrics[0].timestamp == 10_000 && tq(unsynced.metrics[0]) == "unsynced")
        #expect(!unsynced.metrics[0].properties.keys.contains("Pantau/boottime") && !unsynced.hasUuid)
        e.observeClock(bootId: "boot-a", syncedOffset: 1_800_000_000_000)
        let corrected = try framed(e, body)
        #expect(corrected.metrics[0].timestamp == 1_800_000_005_000 && tq(corrected.metrics[0]) == "corrected")
        #expect(corrected.timestamp == 1_800_000_005_000)
        #expect(corrected.metrics[0].properties.keys == ["tq"] && !corrected.hasUuid)
    }

    @Test("a metric of an earlier boot is marked unverified, never shifted; synced ones carry no mark")
    func earlierBoot() throws {
        let e = edge()
        let body = try #require(
            e.data([reading(10_000)], device: "pump-1", time: .unsynced, boottimes: [5_000], bootId: "boot-a"))
        e.observeClock(bootId: "boot-b", syncedOffset: 1_800_000_000_000)
        let old = try framed(e, body)
        #expect(old.metrics[0].timestamp == 10_000 && tq(old.metrics[0]) == "unverified")
        let synced = try framed(e, try #require(e.data([reading(1_800_000_000_000)], device: "pump-1")))
        #expect(!synced.metrics[0].hasProperties)
        let late = try framed(e, try #require(e.data([reading(1_800_000_000_000)], device: "pump-1", time: .corrected)))
        #expect(tq(late.metrics[0]) == "corrected" && late.metrics[0].timestamp == 1_800_000_000_000)
    }
}

@Suite("Sparkplug DDATA in the journal's time correction")
struct SparkplugJournalTimeTests {
    @Test("an unsynced DDATA is stamped unsynced; the journal's correction moves its time but not its protobuf body")
    func stampedAndBodyKept() throws {
        let reading = Reading(
            device: "pump-1", point: "limit", quantity: "x", unit: "m", value: .number(7), quality: .good,
            acquiredAt: 10_000)
        let message = try #require(
            edge().dataMessage(
                [reading], device: "pump-1", acquiredAt: 10_000, time: .unsynced, boottimes: [5_000], bootId: "boot-a"))
        #expect(message.stamp == ClockStamp(bootId: "boot-a", boottimeMs: 5_000, quality: .unsynced))
        let fixed = try #require(TimeCorrection.corrected(message, bootId: "boot-a", offset: 1_800_000_000_000))
        #expect(fixed.body == message.body && fixed.acquiredAt == 1_800_000_005_000)
        #expect(fixed.stamp?.quality == .corrected)
        let other = try #require(TimeCorrection.corrected(message, bootId: "boot-b", offset: 1_800_000_000_000))
        #expect(other.body == message.body && other.acquiredAt == 10_000 && other.stamp?.quality == .unverified)
    }
}

@Suite("Sparkplug computed metrics carry the time quality of their JSON form")
struct SparkplugDerivedTimeTests {
    @Test("an unsynced aggregate window: tq on every metric, stamped for the journal, corrected when framed")
    func unsyncedAggregate() throws {
        let e = SparkplugEdge(
            topics: SparkplugTopics(group: "g", edgeNode: "e"), devices: [device], windows: [.minutes(15)],
            savedBdSeq: nil, saveBdSeq: { _ in })
        let json = #"""
            {"tq":"unsynced","count":3,"coverage":1,"device":"pump-1","end":910000,"expected":3,"first":7,
             "first_at":10000,"last":7,"last_at":900000,"late":0,"max":7,"mean":7,"min":7,"point":"limit",
             "quantity":"water_level","start":10000,"stddev":0,"unit":"m","window":"15m","window_ms":900000}
            """#
        let message = OutboundMessage(
            kind: .aggregate, topic: "pantau/s/g/devices/pump-1/aggregates/15m", body: Array(json.utf8),
            device: "pump-1", acquiredAt: 910_000)
        // The boot clock's timeline ran 4 000 ms ahead of boottime.
        let ddata = try #require(e.derivedMessage(message, boottimeOffset: 4_000, bootId: "boot-a"))
        #expect(ddata.stamp == ClockStamp(bootId: "boot-a", boottimeMs: 906_000, quality: .unsynced))
        let journaled = try SpBPayload(serializedBytes: ddata.body)
        #expect(journaled.metrics.count == 6)
        #expect(journaled.metrics.allSatisfy { $0.properties.keys == ["tq", "Pantau/boottime"] })
        e.observeClock(bootId: "boot-a", syncedOffset: 1_800_000_000_000)
        let sent = try SpBPayload(
            serializedBytes: e.frame(ddata.body, topic: "spBv1.0/g/DDATA/e/pump-1", historical: false))
        #expect(sent.metrics.allSatisfy { $0.timestamp == 1_800_000_906_000 && $0.properties.keys == ["tq"] })
        #expect(sent.metrics.allSatisfy { $0.properties.values[0].stringValue == "corrected" })
        // Synchronised (no tq in the JSON): no property, no stamp.
        let plain = OutboundMessage(
            kind: .aggregate, topic: message.topic,
            body: Array(json.replacingOccurrences(of: #""tq":"unsynced","#, with: "").utf8),
            device: "pump-1", acquiredAt: 910_000)
        let synced = try #require(e.derivedMessage(plain, boottimeOffset: 4_000, bootId: "boot-a"))
        #expect(synced.stamp == nil)
        #expect(try SpBPayload(serializedBytes: synced.body).metrics.allSatisfy { !$0.hasProperties })
    }
}
