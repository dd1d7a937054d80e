import Logging
import PantauCore
import PantauPlatform
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Answers `pantau status` on a local unix socket: each connection receives one JSON snapshot, then EOF.
/// Read-only by construction: the server never reads what a client sends.
public final class StatusServer: Sendable {
    public let path: String
    /// The group the socket is handed to (`pantau-status`): its members may run `pantau status`, while the
    /// service's own group, which may read the configuration and its secrets, stays the service's alone.
    public let group: String?
    private let snapshot: @Sendable () -> [UInt8]
    private let logger: Logger
    private let state = Mutex<(fd: Int32, running: Bool, thread: OwnedThread?)>((-1, false, nil))
    /// Wakes the serving thread for stop(), so it sleeps in poll() until a client comes instead of on a timer.
    private let wake = WakeSignal()

    public init(
        path: String, logger: Logger, group: String? = StatusServer.defaultGroup(),
        snapshot: @escaping @Sendable () -> [UInt8]
    ) {
        self.path = path
        self.logger = logger
        self.group = group
        self.snapshot = snapshot
    }

    /// `pantau-status`, or `$PANTAU_STATUS_GROUP` (empty: keep the gateway's own group).
    public static func defaultGroup() -> String? {
        guard let name = FileSystem.environment("PANTAU_STATUS_GROUP") else { return "pantau-status" }
        return name.isEmpty ? nil : name
    }

    public struct SocketError: Error, CustomStringConvertible {
        public var path: String
        public var operation: String
        public var errno: Int32
        public var description: String {
            "status socket \(path): \(operation) failed: \(String(cString: strerror(errno)))"
        }
    }

    /// Binds the socket (mode 0660, group `group` when it exists) and starts answering on a thread of its own.
    public func start() throws(SocketError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(path: path, operation: "socket", errno: errno) }
        unlink(path)
        guard var address = Self.address(path) else {
            close(fd)
            throw SocketError(path: path, operation: "bind (path too long)", errno: ENAMETOOLONG)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let e = errno
            close(fd)
            throw SocketError(path: path, operation: "bind", errno: e)
        }
        chmod(path, 0o660)
        handOver()
        guard listen(fd, 8) == 0 else {
            let e = errno
            close(fd)
            throw SocketError(path: path, operation: "listen", errno: e)
        }
        state.withLock { $0 = (fd, true, nil) }
        let thread = OwnedThread { [self] in self.serve(fd) }
        state.withLock { $0.thread = thread }
    }

    /// Gives the socket to `group`. Its absence (a development machine) or a refusal (the gateway is not a
    /// member) leaves the socket to the gateway's own group, which is logged; it never stops the gateway.
    private func handOver() {
        guard let group else { return }
        guard let gid = Self.groupID(group) else {
            logger.info("status socket stays with the gateway's group: no group \(group) on this system")
            return
        }
        if chown(path, uid_t.max, gid) != 0 {
            let e = errno
            logger.warning(
                "status socket stays with the gateway's group: cannot give it to group \(group)",
                metadata: ["error": "\(String(cString: strerror(e)))", "socket": "\(path)"])
        }
    }

    /// The id of a group by name (getgrnam_r: thread-safe), nil when there is none.
    static func groupID(_ name: String) -> gid_t? {
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let rc = getgrnam_r(name, &entry, &buffer, buffer.count, &result)
        guard rc == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    public func stop() {
        let (thread, fd) = state.withLock { s -> (OwnedThread?, Int32) in
            s.running = false
            return (s.thread, s.fd)
        }
        wake.signal()
        thread?.join()
        if fd >= 0 {
            close(fd)
            unlink(path)
        }
        state.withLock { $0 = (-1, false, nil) }
    }

    private func serve(_ listener: Int32) {
        wake.drain()
        while state.withLock({ $0.running }) {
            var p = [
                pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&p, 2, -1) > 0, p[0].revents != 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var body = snapshot()
            body.append(UInt8(ascii: "\n"))
            var sent = 0
            while sent < body.count {
                let n = body[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            close(client)
        }
    }

    /// The socket address of `path`; nil when the path does not fit (about 107 bytes).
    static func address(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return address
    }

    /// Reads one snapshot from a running gateway's socket (the client side of `pantau status`).
    public static func query(path: String) throws(SocketError) -> [UInt8] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(path: path, operation: "socket", errno: errno) }
        defer { close(fd) }
        guard var address = address(path) else {
            throw SocketError(path: path, operation: "connect (path too long)", errno: ENAMETOOLONG)
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw SocketError(path: path, operation: "connect", errno: errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 { throw SocketError(path: path, operation: "read", errno: errno) }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }
}
