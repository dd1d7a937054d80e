internal import Crypto
import PantauCore

/// HMAC-SHA256 from swift-crypto (BoringSSL on Linux): the MAC of signed remote commands.
public struct HMACSHA256: CommandMAC {
    public init() {}

    public func code(for message: [UInt8], key: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    public func isValid(_ code: [UInt8], for message: [UInt8], key: [UInt8]) -> Bool {
        guard code.count == SHA256.byteCount else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: message, using: SymmetricKey(data: key))
    }
}
