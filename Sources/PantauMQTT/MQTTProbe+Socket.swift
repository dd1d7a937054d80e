#if canImport(Glibc)
    import Glibc
#endif

/// One address a host name resolved to, kept as raw sockaddr bytes for `connect`.
struct ResolvedAddress {
    var family: Int32
    var bytes: [UInt8]
    var text: String
}

extension MQTTProbe {
    static func resolve(host: String, port: Int) -> Result<[ResolvedAddress], MQTTError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            let text = String(cString: gai_strerror(rc))
            return .failure(MQTTError(code: .resolve, message: "cannot resolve \(host): \(text)"))
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

    /// Tries each address with a non-blocking connect bounded by `timeoutMs`.
    static func connectTCP(_ addresses: [ResolvedAddress], port: Int, timeoutMs: Int) -> ProbeStep {
        var failures: [String] = []
        for address in addresses {
            if let failure = connectTCP(address, timeoutMs: timeoutMs) {
                failures.append("\(address.text):\(port) \(failure)")
            } else {
                return ProbeStep(name: "tcp", ok: true, detail: "connected to \(address.text):\(port)")
            }
        }
        return ProbeStep(name: "tcp", ok: false, detail: failures.joined(separator: "; "))
    }

    /// nil on success, else the reason.
    private static func connectTCP(_ address: ResolvedAddress, timeoutMs: Int) -> String? {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        let rc = address.bytes.withUnsafeBytes { raw in
            connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        if rc == 0 { return nil }
        guard errno == EINPROGRESS else { return String(cString: strerror(errno)) }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&poller, 1, Int32(timeoutMs))
        guard ready > 0 else {
            if ready < 0 { return String(cString: strerror(errno)) }
            return "no answer within \(timeoutMs) ms (firewall or wrong port?)"
        }
        var socketError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
        return socketError == 0 ? nil : String(cString: strerror(socketError))
    }
}
