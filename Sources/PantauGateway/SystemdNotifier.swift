import PantauCore
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Tells the service manager about the gateway's state with the sd_notify datagram protocol, without libsystemd.
///
/// Every message is one datagram of newline-separated `KEY=value` assignments sent to `$NOTIFY_SOCKET`. When the
/// gateway does not run under systemd (no `$NOTIFY_SOCKET`) every call is a no-op, so callers never branch on it.
public struct SystemdNotifier: Sendable {
    /// The notification socket: an absolute path, or an abstract name written with a leading `@`; nil when disabled.
    public let socketPath: String?
    /// The unit's `WatchdogSec=`, when systemd expects keep-alive pings from this process.
    public let watchdogTimeout: Duration?

    /// Creates a notifier for a known socket, as `fromEnvironment` does and tests do.
    public init(socketPath: String?, watchdogTimeout: Duration? = nil) {
        self.socketPath = socketPath.flatMap { $0.isEmpty ? nil : $0 }
        self.watchdogTimeout = watchdogTimeout
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` as `sd_notify(3)` and `sd_watchdog_enabled(3)` do.
    ///
    /// The watchdog is only taken when `WATCHDOG_PID` is absent or names this process, because the variables are
    /// inherited by children that must not ping on the service's behalf.
    public static func fromEnvironment(
        processID: Int32 = getpid(),
        environment: (String) -> String? = SystemdNotifier.processEnvironment
    ) -> SystemdNotifier {
        var timeout: Duration?
        if let usecText = environment("WATCHDOG_USEC"), let usec = UInt64(usecText), usec > 0 {
            let pidMatches = environment("WATCHDOG_PID").map { Int32($0) == processID } ?? true
            if pidMatches {
                timeout = .microseconds(Int64(clamping: usec))
            }
        }
        return SystemdNotifier(socketPath: environment("NOTIFY_SOCKET"), watchdogTimeout: timeout)
    }

    /// The variables of this process, read with `getenv`.
    public static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// True when there is a service manager to talk to.
    public var isEnabled: Bool { socketPath != nil }

    /// How often to send `WATCHDOG=1`: half the timeout, as `sd_watchdog_enabled(3)` recommends; nil when no watchdog.
    public var watchdogInterval: Duration? { watchdogTimeout.map { $0 / 2 } }

    /// `READY=1`: the configuration is valid and the buses are open; an optional status line goes in the same datagram.
    public func ready(status text: String? = nil) throws(SystemdNotifyError) {
        try send(["READY=1"] + Self.statusLine(text))
    }

    /// `STATUS=`: a short human-readable state shown by `systemctl status`.
    public func status(_ text: String) throws(SystemdNotifyError) {
        try send(Self.statusLine(text))
    }

    /// `WATCHDOG=1`: the keep-alive ping; send it only when the supervisor has seen every thread make progress.
    public func watchdog() throws(SystemdNotifyError) {
        try send(["WATCHDOG=1"])
    }

    /// `STOPPING=1`: graceful shutdown has begun (flushing the journal, sending the offline status).
    public func stopping(status text: String? = nil) throws(SystemdNotifyError) {
        try send(["STOPPING=1"] + Self.statusLine(text))
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`, which `Type=notify-reload` (systemd 253+) requires; send `ready()` after.
    public func reloading(
        status text: String? = nil,
        clock: any GatewayClock = SystemClock()
    ) throws(SystemdNotifyError) {
        let micros = clock.monotonicNanos() / 1000
        try send(["RELOADING=1", "MONOTONIC_USEC=\(micros)"] + Self.statusLine(text))
    }

    /// Sends raw assignments as one datagram; a no-op when disabled.
    public func send(_ assignments: [String]) throws(SystemdNotifyError) {
        guard let socketPath else { return }
        let address = try NotifyAddress(socketPath)
        let message = assignments.joined(separator: "\n")
        let fd = socket(AF_UNIX, Self.datagramType, 0)
        guard fd >= 0 else {
            let socketErrno = errno
            throw SystemdNotifyError(
                .socketFailed, "cannot create a unix datagram socket", socketPath: socketPath, errnoValue: socketErrno)
        }
        defer { close(fd) }
        let (sent, sendErrno) = address.withSockaddr { sockaddrPointer, length in
            Array(message.utf8).withUnsafeBytes { bytes in
                let result = sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), sockaddrPointer, length)
                return (result, errno)
            }
        }
        guard sent >= 0 else {
            throw SystemdNotifyError(
                .sendFailed, "cannot send to the notification socket", socketPath: socketPath, errnoValue: sendErrno)
        }
    }

    private static let datagramType: Int32 = {
        #if canImport(Glibc)
            Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
            SOCK_DGRAM
        #endif
    }()

    /// A `STATUS=` assignment; line breaks would end the assignment early, so they become spaces.
    private static func statusLine(_ text: String?) -> [String] {
        guard let text else { return [] }
        let flat = String(text.map { $0.isNewline ? " " : $0 })
        return ["STATUS=\(flat)"]
    }
}

/// Why a notification could not be delivered; the gateway logs it and keeps running.
public struct SystemdNotifyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for callers that switch on it.
    public enum Code: Sendable, Equatable {
        case unsupportedAddress
        case pathTooLong
        case socketFailed
        case sendFailed
    }

    public let code: Code
    public let message: String
    /// The `$NOTIFY_SOCKET` value involved.
    public let socketPath: String
    /// `errno` right after the failing call, 0 when no system call failed.
    public let errnoValue: Int32

    init(_ code: Code, _ message: String, socketPath: String, errnoValue: Int32) {
        self.code = code
        self.message = message
        self.socketPath = socketPath
        self.errnoValue = errnoValue
    }

    public var description: String {
        let reason = errnoValue == 0 ? "" : ": \(String(cString: strerror(errnoValue)))"
        return "systemd notify (\(socketPath)): \(message)\(reason)"
    }
}

/// A `sockaddr_un` built from `$NOTIFY_SOCKET`; `@name` is a Linux abstract socket (leading NUL, no terminator).
private struct NotifyAddress {
    private var storage = sockaddr_un()
    private let length: socklen_t

    init(_ path: String) throws(SystemdNotifyError) {
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        guard abstract || bytes.first == UInt8(ascii: "/") else {
            throw SystemdNotifyError(
                .unsupportedAddress, "only absolute paths and @abstract names are supported",
                socketPath: path, errnoValue: 0)
        }
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        // A path needs room for its terminating NUL; an abstract name is counted by length alone.
        guard bytes.count + (abstract ? 0 : 1) <= capacity else {
            throw SystemdNotifyError(
                .pathTooLong, "socket path longer than \(capacity - 1) bytes", socketPath: path, errnoValue: 0)
        }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        length = socklen_t(pathOffset + bytes.count + (abstract ? 0 : 1))
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}
