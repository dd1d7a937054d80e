import Foundation
import PantauCore
import PantauGateway
import Testing

private let key = CommandKey(bytes: Array("0123456789abcdef0123456789abcdef".utf8))
private let target = "tangerang/gw-01"
private let now: Int64 = 1_765_000_000_000

private func signed(_ request: CommandRequest, with key: CommandKey = key) -> CommandRequest {
    var r = request
    r.signature = CommandAuthorizer.sign(r, target: target, key: key, mac: HMACSHA256())
    return r
}

private func write(ts: Int64 = now, nonce: String = "nonce-0001", value: String = "12.5") -> CommandRequest {
    CommandRequest(verb: .write, device: "pump-1", point: "setpoint", value: value, timestamp: ts, nonce: nonce)
}

private func authorizer(window: Int = 30, capacity: Int = 4096) -> CommandAuthorizer {
    CommandAuthorizer(
        config: CommandsConfig(enabled: true, key: key, windowSeconds: window, nonceCapacity: capacity),
        target: target, mac: HMACSHA256())
}

@Suite struct CommandAuthorizerTests {
    @Test func aSignedWriteWithinTheWindowIsAccepted() {
        var a = authorizer()
        #expect(a.authorize(signed(write()), now: now) == nil)
    }

    @Test func commandsAreRefusedWhenDisabled() {
        var a = CommandAuthorizer(config: CommandsConfig(enabled: false, key: key), target: target, mac: HMACSHA256())
        #expect(a.authorize(CommandRequest(verb: .health), now: now)?.status == .disabled)
        #expect(a.authorize(signed(write()), now: now)?.status == .disabled)
    }

    @Test func readOnlyVerbsNeedNoSignatureButWritesDo() {
        var a = authorizer()
        #expect(a.authorize(CommandRequest(verb: .health), now: now) == nil)
        #expect(a.authorize(CommandRequest(verb: .read, device: "pump-1"), now: now) == nil)
        #expect(a.authorize(write(), now: now)?.status == .unsigned)
        let interval = CommandRequest(verb: .pollInterval, device: "pump-1", intervalMs: 1000, durationSeconds: 60)
        #expect(a.authorize(interval, now: now)?.status == .unsigned)
    }

    /// Every signed field is covered: changing any of them after signing breaks the signature.
    @Test(arguments: ["verb", "device", "point", "value", "ts", "nonce", "target", "key"])
    func theSignatureCoversEveryField(_ field: String) {
        let a = authorizer()
        var r = signed(write())
        var target = target
        switch field {
        case "verb":
            r.verb = .pollInterval
            r.point = nil
            r.value = nil
            r.intervalMs = 1000
            r.durationSeconds = 5
        case "device": r.device = "pump-2"
        case "point": r.point = "other"
        case "value": r.value = "12.50"
        case "ts": r.timestamp = now + 1
        case "nonce": r.nonce = "nonce-0002"
        case "target": target = "tangerang/gw-02"
        default:
            r.signature = CommandAuthorizer.sign(
                r, target: target, key: CommandKey(bytes: Array(repeating: 7, count: 32)), mac: HMACSHA256())
        }
        var other = CommandAuthorizer(config: a.config, target: target, mac: HMACSHA256())
        #expect(other.authorize(r, now: now)?.status == .badSignature)
    }

    @Test(arguments: [(-30_001 as Int64, false), (-30_000, true), (30_000, true), (30_001, false)])
    func theWindowIsInclusive(offset: Int64, accepted: Bool) {
        var a = authorizer()
        let result = a.authorize(signed(write(ts: now + offset)), now: now)
        #expect(accepted ? result == nil : result?.status == .expired)
    }

    @Test func aReplayedNonceIsRefusedAndChangesNothing() {
        var a = authorizer()
        let r = signed(write())
        #expect(a.authorize(r, now: now) == nil)
        #expect(a.authorize(r, now: now + 1000)?.status == .replayed)
        // The same nonce with a fresh, correctly signed timestamp is still a replay.
        #expect(a.authorize(signed(write(ts: now + 2000)), now: now + 2000)?.status == .replayed)
        #expect(a.remembered == 1)
    }

    @Test func nonceMemoryIsBoundedAndNeverLetsAReplayThrough() {
        var a = authorizer(capacity: 4)
        let requests = (0..<6).map { signed(write(ts: now + Int64($0), nonce: "nonce-000\($0)")) }
        for r in requests { #expect(a.authorize(r, now: now + 10) == nil) }
        #expect(a.remembered == 4)
        // nonce-0000 and nonce-0001 were forgotten; their timestamps are at or below the floor now.
        #expect(a.authorize(requests[0], now: now + 10)?.status == .replayed)
        #expect(a.authorize(requests[1], now: now + 10)?.status == .replayed)
        #expect(a.authorize(requests[5], now: now + 10)?.status == .replayed)
    }

    @Test func noncesOutsideTheWindowAreForgotten() {
        var a = authorizer(window: 5)
        #expect(a.authorize(signed(write(nonce: "nonce-aaaa")), now: now) == nil)
        #expect(a.authorize(signed(write(ts: now + 20_000, nonce: "nonce-bbbb")), now: now + 20_000) == nil)
        #expect(a.remembered == 1)
    }

    @Test func aGatewayWithoutAKeyRefusesSignedCommands() {
        var a = CommandAuthorizer(config: CommandsConfig(enabled: true), target: target, mac: HMACSHA256())
        #expect(a.authorize(signed(write()), now: now)?.status == .badSignature)
    }

    /// RFC 4231 test case 2: the MAC is HMAC-SHA256 itself.
    @Test func theMACIsHMACSHA256() {
        let code = HMACSHA256().code(for: Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8))
        let hex = code.map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
        #expect(hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let message = Array("what do ya want for nothing?".utf8)
        #expect(HMACSHA256().isValid(code, for: message, key: Array("Jefe".utf8)))
        #expect(!HMACSHA256().isValid(Array(code.prefix(31)), for: message, key: Array("Jefe".utf8)))
    }

    /// A fixed vector, so another client (the integration tests' Python) can be checked against the same text.
    @Test func theSignedTextIsStable() {
        let text = CommandAuthorizer.signedText(write(), target: target)
        #expect(
            text == "pantau-cmd-v1\nwrite\ntangerang/gw-01\ndevice=pump-1&point=setpoint&value=12.5\n"
                + "1765000000000\nnonce-0001")
        // Python: hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
        #expect(
            CommandAuthorizer.sign(write(), target: target, key: key, mac: HMACSHA256())
                == "15919ed5ebb200ff4b4484018243e208be6dde7ea5dc8513513d0167515dbb80")
    }
}
