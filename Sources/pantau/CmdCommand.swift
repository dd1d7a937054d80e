import ArgumentParser
import FoundationEssentials
import PantauCore
import PantauGateway
import PantauMQTT
import PantauPlatform

/// `pantau cmd <verb>`: one remote command, signed with the key file when the verb needs it, answered by the
/// gateway on a reply topic of our own (MQTT 5 Response Topic and Correlation Data).
struct CmdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmd",
        abstract: "Send a remote command to a gateway and print its reply.",
        discussion: """
            Verbs: read, poll-interval, republish, health, journal, write (see docs/mqtt.md, "Commands"). write and \
            poll-interval are signed with --command-key (the gateway's commands.key_file). Exit 0 when the gateway \
            answers ok, 1 when it refuses or the device fails, 69 when no answer comes.
            """)

    @OptionGroup var broker: BrokerOptions
    @Argument(help: "read, poll-interval, republish, health, journal or write.") var verb: String
    @Option(help: "The gateway's site.") var site: String
    @Option(help: "The gateway's id.") var gateway: String
    @Option(help: "The device (read, poll-interval, write).") var device: String?
    @Option(help: "The point to write.") var point: String?
    @Option(help: "The value to write (a decimal number, or true/false for a coil).") var value: String?
    @Option(help: "The temporary poll interval in milliseconds.") var intervalMs: Int64?
    @Option(help: "How long the temporary poll interval holds, in seconds.") var durationS: Int64?
    @Option(name: .customLong("command-key"), help: "The command key file, to sign write and poll-interval.")
    var commandKey: String?
    @Option(help: "Give up waiting for the reply after this many milliseconds.") var timeoutMs = 20_000

    func run() throws {
        guard let verb = CommandVerb(rawValue: verb) else {
            throw ValidationError(
                "unknown verb '\(self.verb)' (\(CommandVerb.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var request = CommandRequest(
            verb: verb, device: device, point: point, value: value, intervalMs: intervalMs,
            durationSeconds: durationS)
        let target = "\(site)/\(gateway)"
        if let keyFile = commandKey {
            let key: CommandKey
            switch CommandKey.load(path: keyFile) {
            case .success(let k): key = k
            case .failure(let error): throw fail(error.message, code: .config)
            }
            request.timestamp = SystemClock().now()
            request.nonce = (0..<4).map { _ in String(UInt32.random(in: 0...UInt32.max), radix: 16) }.joined(
                separator: "-")
            request.signature = CommandAuthorizer.sign(request, target: target, key: key, mac: HMACSHA256())
        }
        let client = try broker.connect(clientIdPrefix: "pantau-cmd")
        defer { client.disconnect() }
        let replyTopic = "\(broker.prefix)/\(site)/\(gateway)/replies/\(UInt64.random(in: 0...UInt64.max))"
        let correlation = (0..<16).map { _ in UInt8.random(in: 0...255) }
        do {
            _ = try client.subscribe(replyTopic, qos: 1)
            try waitFor(client, timeoutMs: 5000) { if case .subscribed = $0 { return true } else { return false } }
            _ = try client.publish(
                topic: "\(broker.prefix)/\(site)/\(gateway)/cmd/\(verb.rawValue)", payload: request.body, qos: 1,
                retain: false, contentType: "application/json", correlationData: correlation,
                responseTopic: replyTopic)
        } catch let error as MQTTError {
            throw fail("\(error)", code: .unavailable)
        }
        var reply: MQTTMessage?
        try waitFor(client, timeoutMs: timeoutMs) { event in
            guard case .message(let m) = event, m.topic == replyTopic, m.correlationData == correlation else {
                return false
            }
            reply = m
            return true
        }
        guard let reply else { throw fail("no reply from \(target) within \(timeoutMs) ms", code: .unavailable) }
        print(reply.text)
        struct Status: Decodable { var status: String }
        let status = try? JSONDecoder().decode(Status.self, from: Data(reply.payload))
        if status?.status != "ok" { throw ExitCode(1) }
    }

    private func waitFor(_ client: MQTTClient, timeoutMs: Int, _ done: (MQTTEvent) -> Bool) throws {
        let deadline = SystemClock().monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while SystemClock().monotonicNanos() < deadline {
            if let error = client.loop(timeoutMs: 100) { throw fail("\(error)", code: .unavailable) }
            if client.takeEvents().contains(where: done) { return }
        }
    }
}
