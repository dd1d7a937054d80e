#if canImport(Glibc)
    import Glibc
#endif

/// One address a host name resolved to, kept as raw sockaddr bytes for `connect`.
public struct ResolvedAddress: Sendable, Hashable {
    public var family: Int32
    public var bytes: [UInt8]
    /// The address in numeric form (`192.0.2.7`, `::1`), for messages.
    public var text: String
}

/// Name resolution and a connect bounded in time: what the MQTT probe and the RTU-over-TCP transport share.
public enum TCPConnect {
    /// The addresses `host` resolves to for a stream socket on `port`, in resolver order without repeats; on
    /// failure the resolver's reason (`gai_strerror`).
    public static func resolve(host: String, port: Int) -> Result<[ResolvedAddress], ResolveError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            return .failure(ResolveError(reason: String(cString: gai_strerror(rc))))
        }
        defer { freeaddrinfo(list) }
        var found: [ResolvedAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry?.pointee {
            if let address = current.ai_addr {
                let bytes = Array(UnsafeRawBufferPointer(start: address, count: Int(current.ai_addrlen)))
                var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                getnameinfo(address, current.ai_addrlen, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST)
                let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !found.contains(where: { $0.bytes == bytes }) {
                    found.append(ResolvedAddress(family: current.ai_family, bytes: bytes, text: text))
                }
            }
            entry = current.ai_next
        }
        return .success(found)
    }

    public struct ResolveError: Error, Sendable {
        public var reason: String
    }

    /// A non-blocking, close-on-exec stream socket connected to `address` within `timeoutMs`, or the errno that
    /// stopped it (`ETIMEDOUT` when nothing answered in time). The caller owns the descriptor.
    public static func connect(_ address: ResolvedAddress, timeoutMs: Int) -> Result<Int32, ConnectError> {
        let kind = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(address.family, kind, 0)
        guard fd >= 0 else { return .failure(ConnectError(errno: errno)) }
        let rc = address.bytes.withUnsafeBytes { raw in
            Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        var code: Int32 = rc == 0 ? 0 : errno
        if code == EINPROGRESS {
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, timeoutMs)))
            if ready > 0 {
                var length = socklen_t(MemoryLayout<Int32>.size)
                code = 0
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
            } else {
                code = ready < 0 ? errno : ETIMEDOUT
            }
        }
        guard code == 0 else {
            close(fd)
            return .failure(ConnectError(errno: code))
        }
        return .success(fd)
    }

    public struct ConnectError: Error, Sendable {
        public var errno: Int32
        public var reason: String { String(cString: strerror(errno)) }
    }
}
