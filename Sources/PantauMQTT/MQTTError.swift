internal import CMosquitto
internal import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// A failure talking to a broker, with a code the caller can switch on and a message a technician can act on.
public struct MQTTError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure, from the network up to the broker's answer.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The broker host name could not be resolved.
        case resolve
        /// TCP connect refused, unreachable, or the connection was lost.
        case tcp
        /// TLS handshake or certificate verification failed.
        case tls
        /// The broker or the library saw a protocol violation.
        case `protocol`
        /// The broker refused the credentials (CONNACK 0x86 Bad user name or password, or 0x87 Not authorized).
        case auth
        /// An authenticated client was refused an operation (PUBACK/SUBACK 0x87: the broker's ACL).
        case notAuthorized
        /// The broker is unavailable, busy, or sends the client elsewhere.
        case serverUnavailable
        /// No answer within the time allowed.
        case timeout
        /// Anything else.
        case other
    }

    /// The layer that failed, for the caller to switch on.
    public var code: Code
    /// The MQTT 5 reason code the broker sent, when the failure came from the broker.
    public var reasonCode: Int?
    /// What happened and where (`host:port`, topic), with a hint when one helps.
    public var message: String

    public init(code: Code, reasonCode: Int? = nil, message: String) {
        self.code = code
        self.reasonCode = reasonCode
        self.message = message
    }

    public var description: String {
        guard let reasonCode else { return "\(code.rawValue): \(message)" }
        return "\(code.rawValue) (reason 0x\(String(reasonCode, radix: 16, uppercase: true))): \(message)"
    }
}

extension MQTTError {
    /// The text libmosquitto gives an MQTT 5 reason code, e.g. 0x87 → `Not authorized`.
    public static func reasonString(_ reasonCode: Int) -> String {
        String(cString: mosquitto_reason_string(Int32(reasonCode)))
    }

    /// The text libmosquitto gives one of its own `MOSQ_ERR_*` results.
    public static func libraryString(_ rc: Int32) -> String {
        String(cString: mosquitto_strerror(rc))
    }

    /// A refused CONNACK (MQTT 5 reason code ≥ 0x80) as an error with a hint for the technician.
    public static func connectRefused(reasonCode: Int, broker: String) -> MQTTError {
        let text = reasonString(reasonCode)
        let code = connackCode(reasonCode)
        let hint: String
        switch code {
        case .auth: hint = "check the username and password the gateway uses for this broker"
        case .notAuthorized: hint = "the broker does not let this client connect (ban or client id policy)"
        case .serverUnavailable: hint = "the broker is up but not serving; failing over or retrying later"
        case .protocol: hint = "the broker does not accept this MQTT 5 client"
        default: hint = "see the broker log"
        }
        return MQTTError(
            code: code, reasonCode: reasonCode, message: "\(broker) refused the connection: \(text); \(hint)")
    }

    /// Maps a CONNACK reason code: a credentials refusal (0x86, and 0x87 which mosquitto sends for a wrong password)
    /// is `auth`; 0x87 only means an ACL decision after connecting (see `operationCode`).
    static func connackCode(_ reasonCode: Int) -> Code {
        switch reasonCode {
        case 0x86, 0x87, 0x8C: return .auth
        case 0x8A: return .notAuthorized
        case 0x88, 0x89, 0x9C, 0x9D, 0x97, 0x9F: return .serverUnavailable
        case 0x81, 0x82, 0x84, 0x85, 0x95, 0x9A, 0x9B: return .protocol
        default: return .other
        }
    }

    /// Maps a PUBACK/SUBACK/DISCONNECT reason code.
    static func operationCode(_ reasonCode: Int) -> Code {
        switch reasonCode {
        case 0x87: return .notAuthorized
        case 0x88, 0x89, 0x8B, 0x9C, 0x9D, 0x97: return .serverUnavailable
        case 0x81, 0x82, 0x90, 0x93, 0x94, 0x95, 0x9A, 0x9B: return .protocol
        case 0x8D: return .timeout
        default: return .other
        }
    }

    /// What a failed TLS handshake means, for the gateway's log and `mqtt-test` alike. `detail` is OpenSSL's error
    /// line (as libmosquitto logged it), `verifyResult` the X509_V_ERR_* code of the broker's certificate check.
    public static func tlsReason(detail: String, verifyResult: Int?, caFile: String?, host: String) -> String {
        let ca = caFile ?? "the configured CA file"
        switch verifyResult {
        case 10?:
            return "the broker's certificate has expired: renew it on the broker (or check this gateway's clock)"
        case 9?:
            return "the broker's certificate is not valid yet: check this gateway's clock (NTP) and the "
                + "certificate's start date"
        case 62?, 1?:
            // libmosquitto 2.0.11 checks the host name in its own verify callback and fails it without an error
            // code (OpenSSL then reports X509_V_ERR_UNSPECIFIED): after a chain that verified, that is the host.
            return "the broker's certificate does not name \(host.isEmpty ? "this host" : host): connect by a name "
                + "or address listed in its subjectAltName, or reissue it"
        case 2?, 18?, 19?, 20?, 21?:
            return "the broker's certificate is not signed by the CA in \(ca)"
        case let code?:
            let text = String(cString: X509_verify_cert_error_string(code))
            return "the broker's certificate was rejected: \(text)"
        case nil:
            break
        }
        if detail.contains("certificate required") || detail.contains("peer did not return a certificate") {
            return "the broker requires a client certificate: set the TLS certificate and key files"
        }
        if detail.contains("alert certificate expired") {
            return "the broker refused this gateway's client certificate: it has expired"
        }
        if detail.contains("alert unknown ca") || detail.contains("alert bad certificate") {
            return "the broker refused this gateway's client certificate: it does not trust its issuer"
        }
        if detail.contains("certificate verify failed") {
            return "certificate verification failed: the broker's certificate is not signed by \(ca) or does not "
                + "name this host"
        }
        return "TLS handshake failed"
    }

    /// A libmosquitto `MOSQ_ERR_*` result as an error; reads `errno` for `MOSQ_ERR_ERRNO`, so call it right away.
    static func library(_ rc: Int32, context: String, errnoValue: Int32 = errno) -> MQTTError {
        let code: Code
        var text = libraryString(rc)
        switch mosq_err_t(rc) {
        case MOSQ_ERR_EAI, MOSQ_ERR_LOOKUP:
            code = .resolve
        case MOSQ_ERR_ERRNO:
            code = errnoValue == ETIMEDOUT ? .timeout : .tcp
            text = String(cString: strerror(errnoValue))
        case MOSQ_ERR_NO_CONN, MOSQ_ERR_CONN_LOST:
            code = .tcp
        case MOSQ_ERR_TLS, MOSQ_ERR_TLS_HANDSHAKE, MOSQ_ERR_OCSP:
            code = .tls
        case MOSQ_ERR_PROTOCOL, MOSQ_ERR_MALFORMED_PACKET, MOSQ_ERR_MALFORMED_UTF8, MOSQ_ERR_DUPLICATE_PROPERTY,
            MOSQ_ERR_OVERSIZE_PACKET, MOSQ_ERR_PAYLOAD_SIZE, MOSQ_ERR_QOS_NOT_SUPPORTED,
            MOSQ_ERR_RETAIN_NOT_SUPPORTED, MOSQ_ERR_TOPIC_ALIAS_INVALID, MOSQ_ERR_NOT_SUPPORTED:
            code = .protocol
        case MOSQ_ERR_AUTH, MOSQ_ERR_CONN_REFUSED:
            code = .auth
        case MOSQ_ERR_ACL_DENIED:
            code = .notAuthorized
        case MOSQ_ERR_KEEPALIVE, MOSQ_ERR_TIMEOUT:
            code = .timeout
        default:
            code = .other
        }
        return MQTTError(code: code, message: "\(context): \(text)")
    }
}
