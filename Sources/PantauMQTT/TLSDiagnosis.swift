internal import COpenSSL
import PantauCore
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// A second look at a TLS connection libmosquitto reported only as "Protocol error" or "connection lost" before
/// CONNACK. With TLS 1.3 a broker that requires a client certificate checks it after the client has finished its
/// handshake; its alert then races the CONNECT the client writes, and libmosquitto often sees only a reset. This
/// repeats the handshake with OpenSSL alone and waits for the broker's verdict, which names the reason.
enum TLSDiagnosis {
    /// The OpenSSL error line of the broker's answer (as libmosquitto would have logged it), or nil when the
    /// handshake and a short wait went through without complaint (then the failure was not about TLS).
    static func probe(host: String, port: Int, tls: MQTTConfig.TLS, timeoutMs: Int = 2000) -> String? {
        guard case .success(let addresses) = MQTTProbe.resolve(host: host, port: port),
            let address = addresses.first
        else { return nil }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = address.bytes.withUnsafeBytes { raw in
            connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard connected == 0, let context = SSL_CTX_new(TLS_client_method()) else { return nil }
        defer { SSL_CTX_free(context) }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        guard SSL_CTX_load_verify_locations(context, tls.caFile, nil) == 1 else { return nil }
        if let cert = tls.certFile, let key = tls.keyFile {
            guard SSL_CTX_use_certificate_chain_file(context, cert) == 1,
                SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1
            else { return nil }
        }
        guard let ssl = SSL_new(context) else { return nil }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, fd)
        ERR_clear_error()
        if SSL_connect(ssl) != 1 { return errorLine() }
        // The handshake is done on our side; the broker's verdict on our certificate (or its absence) follows.
        var byte: UInt8 = 0
        if SSL_read(ssl, &byte, 1) <= 0 { return errorLine() }
        return nil
    }

    /// The first OpenSSL error queued, in libmosquitto's log format.
    private static func errorLine() -> String? {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return "OpenSSL Error[0]: " + String(decoding: text, as: UTF8.self)
    }
}
