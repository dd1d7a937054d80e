import FoundationEssentials

/// Decides whether a parsed command may run: commands enabled, and for verbs that change something a valid
/// HMAC-SHA256 signature, a timestamp within the window around the gateway's clock and a nonce not seen before.
///
/// The MAC itself comes in as a `CommandMAC` (swift-crypto's HMAC-SHA256 in PantauGateway), so this module stays free
/// of cryptographic code. A plain value: the caller keeps one per gateway and passes the time in, so the window and the replay memory
/// are tested without a clock. The nonce memory is bounded: when it is full the oldest nonce is forgotten and every
/// command not newer than it is refused from then on (a replay can never slip through a full memory).
public struct CommandAuthorizer: Sendable {
    public let config: CommandsConfig
    public let mac: any CommandMAC
    /// The target every signature names: `<site>/<gateway>`.
    public let target: String
    private var seen: [String: Int64] = [:]
    /// Timestamps of the remembered nonces, oldest first, to forget in order.
    private var order: [(nonce: String, ts: Int64)] = []
    private var orderStart = 0
    /// Commands with a timestamp at or below this were possibly forgotten: refused as replays.
    private var floor: Int64 = .min

    public init(config: CommandsConfig, target: String, mac: any CommandMAC) {
        self.config = config
        self.mac = mac
        self.target = target
    }

    /// Nonces remembered now.
    public var remembered: Int { seen.count }

    /// nil when the command may run, else why not. Accepting it remembers its nonce.
    public mutating func authorize(_ request: CommandRequest, now: Int64) -> CommandRefusal? {
        guard config.enabled else { return CommandRefusal(.disabled, "commands are disabled on this gateway") }
        guard request.verb.needsSignature || request.isSigned else { return nil }
        guard let ts = request.timestamp, let nonce = request.nonce, let sig = request.signature else {
            return CommandRefusal(.unsigned, "'\(request.verb.rawValue)' needs 'ts', 'nonce' and 'sig'")
        }
        guard let key = config.key else {
            return CommandRefusal(.badSignature, "this gateway has no command key: signed commands are refused")
        }
        guard Self.isValid(signature: sig, for: request, target: target, key: key, mac: mac) else {
            return CommandRefusal(.badSignature, "the signature does not match the command")
        }
        let window = Int64(config.windowSeconds) * 1000
        guard abs(now - ts) <= window else {
            return CommandRefusal(
                .expired,
                "'ts' is \(abs(now - ts) / 1000) s from the gateway's clock, more than the "
                    + "\(config.windowSeconds) s allowed")
        }
        forget(before: now - window)
        guard seen[nonce] == nil, ts > floor else {
            return CommandRefusal(.replayed, "nonce '\(nonce)' was already used")
        }
        remember(nonce, ts: ts)
        return nil
    }

    private mutating func remember(_ nonce: String, ts: Int64) {
        if seen.count >= config.nonceCapacity, orderStart < order.count {
            let oldest = order[orderStart]
            orderStart += 1
            seen[oldest.nonce] = nil
            floor = max(floor, oldest.ts)
        }
        seen[nonce] = ts
        order.append((nonce, ts))
        compact()
    }

    /// Nonces older than the window need no memory: their commands are refused as expired anyway.
    private mutating func forget(before limit: Int64) {
        while orderStart < order.count, order[orderStart].ts < limit {
            if seen[order[orderStart].nonce] == order[orderStart].ts { seen[order[orderStart].nonce] = nil }
            orderStart += 1
        }
        compact()
    }

    private mutating func compact() {
        if orderStart > 0, orderStart * 2 >= order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }

    /// The text a signature covers: `pantau-cmd-v1`, verb, target, arguments, timestamp and nonce, one per line.
    public static func signedText(_ request: CommandRequest, target: String) -> String {
        [
            "pantau-cmd-v1", request.verb.rawValue, target, request.canonicalArguments,
            String(request.timestamp ?? 0), request.nonce ?? "",
        ].joined(separator: "\n")
    }

    /// The hex MAC of the signed text, as a client sends it in `sig`.
    public static func sign(_ request: CommandRequest, target: String, key: CommandKey, mac: any CommandMAC) -> String {
        let code = mac.code(for: Array(signedText(request, target: target).utf8), key: key.bytes)
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: code.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// Decodes the hex, then lets the MAC compare (in constant time).
    static func isValid(
        signature: String, for request: CommandRequest, target: String, key: CommandKey, mac: any CommandMAC
    ) -> Bool {
        guard let code = hexBytes(signature) else { return false }
        return mac.isValid(code, for: Array(signedText(request, target: target).utf8), key: key.bytes)
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A message authentication code over the signed text of a command (HMAC-SHA256 in the gateway).
public protocol CommandMAC: Sendable {
    func code(for message: [UInt8], key: [UInt8]) -> [UInt8]
    /// Compares in constant time; false for a code of the wrong length.
    func isValid(_ code: [UInt8], for message: [UInt8], key: [UInt8]) -> Bool
}
