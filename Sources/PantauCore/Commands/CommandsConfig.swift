import PantauPlatform

/// The `commands:` section: remote commands are off unless enabled, and signed verbs need the key.
public struct CommandsConfig: Sendable, Hashable {
    public var enabled: Bool
    /// The configuration has a `commands:` section: the gateway subscribes to its command topics (and answers
    /// `disabled` while `enabled` is false). Without the section it does not subscribe at all.
    public var listening = false
    /// The HMAC key (from `key_file`); without it every signed verb is refused.
    public var key: CommandKey?
    /// How far a signed command's `ts` may be from the gateway's clock.
    public var windowSeconds: Int
    /// Nonces remembered at most (within the window).
    public var nonceCapacity: Int

    public init(enabled: Bool = false, key: CommandKey? = nil, windowSeconds: Int = 30, nonceCapacity: Int = 4096) {
        self.enabled = enabled
        self.key = key
        self.windowSeconds = windowSeconds
        self.nonceCapacity = nonceCapacity
    }

    public static let disabled = CommandsConfig()
}

/// The shared secret of signed commands. Its description never shows the bytes.
public struct CommandKey: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    public var description: String { "<command key, \(bytes.count) bytes>" }

    /// The shortest key accepted: HMAC-SHA256's output size.
    public static let minimumBytes = 32
    public static let maximumBytes = 4096

    /// Reads a key file: it must be a regular file owned by this process's user and readable by nobody else
    /// (no group or other permission bits), and hold at least 32 bytes (trailing newlines are not part of the key).
    public static func load(path: String) -> Result<CommandKey, CommandKeyError> {
        let status: FileSystem.Status
        switch FileSystem.status(path) {
        case .success(let found): status = found
        case .failure(let error):
            return .failure(CommandKeyError("cannot read the command key file \(path): \(error.reason)"))
        }
        guard status.isRegularFile else {
            return .failure(CommandKeyError("the command key file \(path) is not a regular file"))
        }
        let permissions = status.permissions & 0o777
        if permissions & 0o077 != 0 {
            let mode = String(permissions, radix: 8)
            return .failure(
                CommandKeyError(
                    "the command key file \(path) has mode 0\(mode): group or others may read it; "
                        + "it must be readable only by the service user (chmod 600 \(path))"))
        }
        if status.owner != FileSystem.effectiveUser {
            return .failure(
                CommandKeyError(
                    "the command key file \(path) belongs to uid \(status.owner), not the service user "
                        + "(uid \(FileSystem.effectiveUser))"))
        }
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readBytes(path, limit: maximumBytes)
        } catch {
            return .failure(CommandKeyError("cannot read the command key file \(path): \(error.reason)"))
        }
        var key = bytes
        while let last = key.last, last == 0x0A || last == 0x0D { key.removeLast() }
        guard key.count <= maximumBytes else {
            return .failure(CommandKeyError("the command key file \(path) is larger than \(maximumBytes) bytes"))
        }
        guard key.count >= minimumBytes else {
            return .failure(
                CommandKeyError(
                    "the command key in \(path) is \(key.count) bytes; at least \(minimumBytes) are needed "
                        + "(e.g. head -c 32 /dev/urandom | xxd -p -c 64 > \(path))"))
        }
        return .success(CommandKey(bytes: key))
    }
}

public struct CommandKeyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
