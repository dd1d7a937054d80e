import PantauCore
import PantauMQTT
import Synchronization
import Testing

@testable import PantauSparkplug

private func state(_ json: String) -> Result<HostState, HostState.Rejection> { HostState.parse(Array(json.utf8)) }

private final class Warnings: Sendable {
    let lines = Mutex<[String]>([])
}

private func hostEdge(_ warnings: Warnings? = nil) -> SparkplugEdge {
    let profile = DeviceProfile(
        id: "p", manufacturer: "T", model: "P", source: "unit test",
        points: [PointSpec(name: "level", quantity: "level", table: .holding, address: 1, type: .u16, unit: "cm")])
    let device = DeviceConfig(name: "wl-1", bus: "net", unitId: 1, profile: profile, pollInterval: .seconds(5))
    return SparkplugEdge(
        topics: SparkplugTopics(group: "g", edgeNode: "e"), devices: [device], savedBdSeq: nil,
        primaryHostId: "scada", saveBdSeq: { _ in }, warn: { line in warnings?.lines.withLock { $0.append(line) } })
}

private func stateMessage(_ json: String, topic: String = "spBv1.0/STATE/scada") -> MQTTMessage {
    MQTTMessage(topic: topic, payload: Array(json.utf8), qos: 1, retain: true)
}

@Suite("Sparkplug primary host STATE")
struct PrimaryHostTests {
    @Test("a STATE body is read as hostile input: bounded, an object with a boolean and an integer timestamp")
    func parse() {
        #expect(
            state(#"{"online":true,"timestamp":1700000000000}"#)
                == .success(HostState(online: true, timestamp: 1_700_000_000_000)))
        #expect(
            state(#" {"timestamp":5, "online":false, "extra":[1]} "#)
                == .success(HostState(online: false, timestamp: 5)))
        #expect(state(#"{"online":true}"#) == .failure(.malformed("no 'timestamp'")))
        #expect(state(#"{"timestamp":1}"#) == .failure(.malformed("no 'online'")))
        #expect(state(#"{"online":"true","timestamp":1}"#) == .failure(.malformed("'online' has the wrong type")))
        #expect(state(#"{"online":true,"timestamp":-1}"#).isFailure)
        #expect(state(#"{"online":true,"timestamp":1.5}"#).isFailure)
        #expect(state(#"{"online":true,"timestamp":184467440737095516150}"#).isFailure)
        #expect(state(#"{"online":true,"timestamp":null}"#).isFailure)
        #expect(state("ONLINE") == .failure(.malformed("not JSON")))
        #expect(state(#"[true,1]"#).isFailure)
        #expect(state("") == .failure(.malformed("not JSON")))
        #expect(HostState.parse([0xff, 0xfe, 0x7b]).isFailure)
        let huge = #"{"online":true,"timestamp":1,"pad":""# + String(repeating: "x", count: 2000) + #""}"#
        #expect(state(huge) == .failure(.tooLarge(huge.utf8.count)))
        let deep = String(repeating: "[", count: 1000)
        #expect(state(deep).isFailure)
    }

    @Test("without a primary host the births follow the CONNACK")
    func noHost() {
        var s = PrimaryHostSession(hostId: nil)
        #expect(s.holdsData)
        s.connecting()
        #expect(s.connack() == [.births] && !s.holdsData && s.stateTopic == nil)
        #expect(s.rebirth() == [.births])
    }

    @Test("with a primary host, births and data wait for its online STATE on this connection")
    func waitsForHost() {
        var s = PrimaryHostSession(hostId: "scada")
        #expect(s.stateTopic == "spBv1.0/STATE/scada")
        s.connecting()
        #expect(s.connack() == [] && s.holdsData)
        #expect(s.rebirth() == [])  // a rebirth request does not bypass the host
        #expect(s.state(HostState(online: false, timestamp: 10)) == [] && s.holdsData)
        #expect(s.state(HostState(online: true, timestamp: 20)) == [.births] && !s.holdsData)
        #expect(s.state(HostState(online: true, timestamp: 30)) == [])  // already born
        #expect(s.rebirth() == [.births])
    }

    @Test("a STATE before the CONNACK (retained, delivered early) counts once connected")
    func stateBeforeConnack() {
        var s = PrimaryHostSession(hostId: "scada")
        s.connecting()
        #expect(s.state(HostState(online: true, timestamp: 20)) == [])
        #expect(s.connack() == [.births])
    }

    @Test("offline after the births ends the session; the next connection waits for the host again")
    func hostGoesOffline() {
        var s = PrimaryHostSession(hostId: "scada")
        s.connecting()
        _ = s.connack()
        #expect(s.state(HostState(online: true, timestamp: 20)) == [.births])
        #expect(s.state(HostState(online: false, timestamp: 20)) == [.endSession] && s.holdsData)
        // The new connection: the retained offline STATE keeps it waiting, without ending it again.
        s.connecting()
        #expect(s.connack() == [] && s.holdsData)
        #expect(s.state(HostState(online: false, timestamp: 20)) == [])
        #expect(s.state(HostState(online: true, timestamp: 40)) == [.births] && !s.holdsData)
    }

    @Test("a STATE older than the last accepted one is ignored, online or offline")
    func olderIgnored() {
        var s = PrimaryHostSession(hostId: "scada")
        s.connecting()
        _ = s.connack()
        #expect(s.state(HostState(online: true, timestamp: 50)) == [.births])
        #expect(s.state(HostState(online: false, timestamp: 49)) == nil && !s.holdsData)
        #expect(s.state(HostState(online: false, timestamp: 50)) == [.endSession])
        s.connecting()
        _ = s.connack()
        #expect(s.state(HostState(online: false, timestamp: 60)) == [])
        #expect(s.state(HostState(online: true, timestamp: 59)) == nil && s.holdsData)
    }

    @Test("a lost connection forgets the births: nothing flows until the next CONNACK and host")
    func lost() {
        var s = PrimaryHostSession(hostId: "scada")
        s.connecting()
        _ = s.connack()
        _ = s.state(HostState(online: true, timestamp: 1))
        s.disconnected()
        #expect(s.holdsData && s.rebirth() == [])
    }

    @Test("the edge node subscribes to STATE, holds data, births on online and restarts on offline")
    func edgeNode() throws {
        let warnings = Warnings()
        let e = hostEdge(warnings)
        #expect(e.subscriptions == ["spBv1.0/g/NCMD/e", "spBv1.0/STATE/scada"])
        let firstWill = try SpBPayload(serializedBytes: e.nextWill().payload).metrics[0].longValue
        #expect(e.connected() == SessionStep.none && e.holdsData)
        #expect(
            e.inbound(stateMessage(#"{"online":true,"timestamp":7}"#, topic: "spBv1.0/STATE/other"))
                == SessionStep.none)
        #expect(e.inbound(stateMessage("garbage")) == SessionStep.none && e.holdsData)
        #expect(e.inbound(stateMessage(#"{"online":true,"timestamp":7}"#)) == .births && !e.holdsData)
        #expect(e.inbound(stateMessage(#"{"online":false,"timestamp":6}"#)) == SessionStep.none && !e.holdsData)
        #expect(e.inbound(stateMessage(#"{"online":false,"timestamp":7}"#)) == .restart && e.holdsData)
        // The NDEATH of the ended session is the current bdSeq; the next connection's Will takes a new one.
        #expect(try SpBPayload(serializedBytes: e.cleanStop().payload).metrics[0].longValue == firstWill)
        let nextWill = try SpBPayload(serializedBytes: e.nextWill().payload).metrics[0].longValue
        #expect(nextWill == (firstWill + 1) % 256)
        #expect(e.connected() == SessionStep.none && e.holdsData)
        #expect(e.inbound(stateMessage(#"{"online":true,"timestamp":9}"#)) == .births)
        let nbirth = try SpBPayload(serializedBytes: e.births(at: 10)[0].payload)
        #expect(nbirth.metrics[0].longValue == nextWill)
        let lines = warnings.lines.withLock { $0 }
        #expect(lines.count == 4)
        #expect(lines[0] == "births and data wait for the primary host 'scada' to be online (spBv1.0/STATE/scada)")
        #expect(lines[1].contains("not JSON") && lines[2].contains("older") && lines[3].contains("wait for"))
    }
}

extension Result {
    fileprivate var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
