import PantauCore
import Testing

private func parse(_ verb: CommandVerb, _ json: String) -> Result<CommandRequest, CommandRefusal> {
    CommandRequest.parse(verb: verb, body: Array(json.utf8))
}

@Suite struct CommandRequestTests {
    @Test func parsesAWrite() throws {
        let sig = String(repeating: "A", count: 64)
        let r = try parse(
            .write,
            #"{"device":"pump-1","point":"setpoint","value":"12.5","ts":5,"nonce":"abcdefgh","sig":"\#(sig)"}"#
        ).get()
        #expect(r.device == "pump-1" && r.point == "setpoint" && r.value == "12.5" && r.timestamp == 5)
        #expect(r.signature == String(repeating: "a", count: 64))
        #expect(r.canonicalArguments == "device=pump-1&point=setpoint&value=12.5")
    }

    @Test func theVerbComesFromTheTopic() throws {
        #expect(try CommandRequest.verb(topic: "p/s/g/cmd/read", base: "p/s/g").get() == .read)
        #expect(CommandRequest.verb(topic: "p/s/g/cmd/reboot", base: "p/s/g").failure?.status == .unknownVerb)
        #expect(CommandRequest.verb(topic: "p/s/g/cmd/read/x", base: "p/s/g").failure?.status == .unknownVerb)
    }

    @Test(arguments: [
        (CommandVerb.health, "[1]"),
        (.health, "{"),
        (.health, #"{"extra":1}"#),
        (.read, "{}"),
        (.read, #"{"device":"a/b"}"#),
        (.read, #"{"device":""}"#),
        (.read, #"{"device":7}"#),
        (.write, #"{"device":"d","point":"p","value":12.5}"#),
        (.write, #"{"device":"d","point":"p","value":"1&x=2"}"#),
        (.write, #"{"device":"d","point":"p"}"#),
        (.write, #"{"device":"d","point":"p","value":"1","nonce":"short"}"#),
        (.write, #"{"device":"d","point":"p","value":"1","sig":"00"}"#),
        (.write, #"{"device":"d","point":"p","value":"1","ts":-1}"#),
        (.pollInterval, #"{"device":"d","interval_ms":50,"duration_s":10}"#),
        (.pollInterval, #"{"device":"d","interval_ms":1000,"duration_s":100000}"#),
        (.pollInterval, #"{"device":"d","interval_ms":1.5,"duration_s":10}"#),
        (.health, #"{"device":"d"}"#),
        (.read, #"{"device":"d","value":"1"}"#),
    ])
    func hostileOrIncompleteBodiesAreBadRequests(verb: CommandVerb, json: String) {
        #expect(parse(verb, json).failure?.status == .badRequest)
    }

    @Test func anOversizedBodyIsRefusedBeforeParsing() {
        let body = [UInt8](repeating: UInt8(ascii: " "), count: CommandRequest.maxBodyBytes + 1)
        #expect(CommandRequest.parse(verb: .health, body: body).failure?.status == .badRequest)
    }

    /// What a client sends (`pantau cmd`) is what the gateway reads.
    @Test func theBodyParsesBackToTheSameRequest() throws {
        let r = CommandRequest(
            verb: .pollInterval, device: "pump-1", intervalMs: 500, durationSeconds: 60, timestamp: 7,
            nonce: "nonce-0001", signature: String(repeating: "b", count: 64))
        #expect(try CommandRequest.parse(verb: .pollInterval, body: r.body).get() == r)
        #expect(String(decoding: CommandRequest(verb: .read, device: "d").body, as: UTF8.self) == #"{"device":"d"}"#)
    }

    @Test func anEmptyBodyIsAnEmptyObject() throws {
        #expect(try CommandRequest.parse(verb: .health, body: []).get() == CommandRequest(verb: .health))
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
