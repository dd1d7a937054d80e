import PantauCore
import Testing

@testable import PantauGateway

#if canImport(Glibc)
    import Glibc
#endif

/// A unix datagram socket standing in for systemd's notification socket.
final class NotifySocketListener {
    let fd: Int32
    /// What to put in `NOTIFY_SOCKET`: a path in a fresh temp dir, or `@name` for an abstract socket.
    let notifySocket: String
    private let directory: String?

    init(abstract: Bool = false) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ListenerError.system("socket", errno) }
        var nameBytes: [UInt8]
        if abstract {
            notifySocket = "@pantau-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            directory = nil
            nameBytes = Array(notifySocket.utf8)
            nameBytes[0] = 0
        } else {
            var template = Array("/tmp/pantau-notify-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw ListenerError.system("mkdtemp", errno) }
            directory = String(cString: made)
            notifySocket = directory! + "/notify.sock"
            nameBytes = Array(notifySocket.utf8) + [0]
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: nameBytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + nameBytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw ListenerError.system("bind", errno) }
    }

    /// The next datagram; the generous wait only guards against a hang, it is not a timing assertion.
    func receive() throws -> String {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 10_000) == 1 else { throw ListenerError.nothingArrived }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw ListenerError.system("recv", errno) }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    /// The next datagram, for async tests: polls without blocking so the cooperative pool stays free for the code
    /// under test; the ten-second bound only guards against a hang.
    func nextDatagram() async throws -> String {
        for _ in 0..<1000 {
            if !isEmpty() { return try receive() }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ListenerError.nothingArrived
    }

    /// True when nothing is waiting on the socket right now.
    func isEmpty() -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) == 0
    }

    deinit {
        close(fd)
        if let directory {
            unlink(notifySocket)
            rmdir(directory)
        }
    }
}

enum ListenerError: Error {
    case system(String, Int32)
    case nothingArrived
}

/// A clock that stands still where the test puts it.
private struct FixedClock: GatewayClock {
    let monotonic: UInt64
    func now() -> UnixMillis { 0 }
    func monotonicNanos() -> UInt64 { monotonic }
}

@Suite("SystemdNotifier")
struct SystemdNotifierTests {
    @Test("ready, status and watchdog arrive as sd_notify datagrams", arguments: [false, true])
    func sendsDatagrams(abstract: Bool) throws {
        let listener = try NotifySocketListener(abstract: abstract)
        let notifier = SystemdNotifier(socketPath: listener.notifySocket)

        try notifier.ready(status: "polling 2 buses")
        #expect(try listener.receive() == "READY=1\nSTATUS=polling 2 buses")
        try notifier.status("broker offline, 120 readings queued")
        #expect(try listener.receive() == "STATUS=broker offline, 120 readings queued")
        try notifier.watchdog()
        #expect(try listener.receive() == "WATCHDOG=1")
        try notifier.stopping()
        #expect(try listener.receive() == "STOPPING=1")
    }

    @Test("reloading carries MONOTONIC_USEC from the clock, as Type=notify-reload requires")
    func reloadingCarriesMonotonicTime() throws {
        let listener = try NotifySocketListener()
        let notifier = SystemdNotifier(socketPath: listener.notifySocket)
        try notifier.reloading(status: "reloading configuration", clock: FixedClock(monotonic: 12_345_678_901))
        #expect(try listener.receive() == "RELOADING=1\nMONOTONIC_USEC=12345678\nSTATUS=reloading configuration")
    }

    @Test("a line break in a status cannot start a second assignment")
    func statusIsOneLine() throws {
        let listener = try NotifySocketListener()
        let notifier = SystemdNotifier(socketPath: listener.notifySocket)
        try notifier.status("bus rs485-1 down\nREADY=1")
        #expect(try listener.receive() == "STATUS=bus rs485-1 down READY=1")
    }

    @Test("without NOTIFY_SOCKET every call is a silent no-op")
    func disabledIsNoOp() throws {
        let notifier = SystemdNotifier.fromEnvironment { _ in nil }
        #expect(!notifier.isEnabled)
        #expect(notifier.watchdogInterval == nil)
        try notifier.ready(status: "ignored")
        try notifier.watchdog()
    }

    struct EnvironmentCase: Sendable, CustomTestStringConvertible {
        let variables: [String: String]
        let socket: String?
        let timeout: Duration?
        var testDescription: String { variables.keys.sorted().map { "\($0)=\(variables[$0]!)" }.joined(separator: " ") }
    }

    @Test(
        "environment parsing follows sd_watchdog_enabled",
        arguments: [
            EnvironmentCase(
                variables: ["NOTIFY_SOCKET": "/run/systemd/notify"], socket: "/run/systemd/notify",
                timeout: nil),
            EnvironmentCase(
                variables: ["NOTIFY_SOCKET": "@sd-notify", "WATCHDOG_USEC": "30000000"],
                socket: "@sd-notify", timeout: .seconds(30)),
            EnvironmentCase(
                variables: ["NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "4242"],
                socket: "/n", timeout: .seconds(20)),
            EnvironmentCase(
                variables: ["NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"],
                socket: "/n", timeout: nil),
            EnvironmentCase(variables: ["WATCHDOG_USEC": "0"], socket: nil, timeout: nil),
            EnvironmentCase(variables: ["WATCHDOG_USEC": "soon", "NOTIFY_SOCKET": ""], socket: nil, timeout: nil),
        ])
    func environment(_ row: EnvironmentCase) {
        let notifier = SystemdNotifier.fromEnvironment(processID: 4242) { row.variables[$0] }
        #expect(notifier.socketPath == row.socket)
        #expect(notifier.watchdogTimeout == row.timeout)
        #expect(notifier.watchdogInterval == row.timeout.map { $0 / 2 })
    }

    @Test("the ping interval is half of WatchdogSec")
    func pingAtHalf() {
        let notifier = SystemdNotifier.fromEnvironment(processID: 7) { ["WATCHDOG_USEC": "30000000"][$0] }
        #expect(notifier.watchdogInterval == .seconds(15))
    }

    @Test(
        "addresses systemd never hands out are refused with a code",
        arguments: [
            ("vsock:2:1234", SystemdNotifyError.Code.unsupportedAddress),
            ("relative/notify", .unsupportedAddress),
            ("/" + String(repeating: "x", count: 200), .pathTooLong),
        ])
    func refusesBadAddresses(path: String, code: SystemdNotifyError.Code) {
        let notifier = SystemdNotifier(socketPath: path)
        #expect(throws: SystemdNotifyError.self) { try notifier.ready() }
        do {
            try notifier.ready()
        } catch {
            #expect(error.code == code)
            #expect(error.socketPath == path)
        }
    }

    @Test("a socket nobody listens on is reported as a send failure")
    func missingListener() throws {
        let notifier = SystemdNotifier(socketPath: "/tmp/pantau-no-such-dir-\(getpid())/notify.sock")
        do {
            try notifier.watchdog()
            Issue.record("sending to a missing socket succeeded")
        } catch {
            #expect(error.code == .sendFailed)
            #expect(error.errnoValue == ENOENT)
        }
    }
}
