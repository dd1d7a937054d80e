import Testing

@testable import PantauMQTT

/// One diagnosis for the gateway's log and `mqtt-test`: each TLS failure named apart (issue 19 item 5).
@Suite struct MQTTTLSReasonTests {
    static let verifyFailed = "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed"

    @Test(arguments: [
        (10, "has expired"), (9, "is not valid yet"), (62, "does not name broker.example"),
        (1, "does not name broker.example"), (20, "is not signed by the CA in /etc/pantau/ca.crt"),
        (19, "is not signed by the CA in"), (18, "is not signed by the CA in"),
        (23, "was rejected: certificate revoked"),
    ])
    func verificationResults(code: Int, expected: String) {
        let reason = MQTTError.tlsReason(
            detail: Self.verifyFailed, verifyResult: code, caFile: "/etc/pantau/ca.crt", host: "broker.example")
        #expect(reason.contains(expected), "\(reason)")
    }

    @Test(arguments: [
        (
            "OpenSSL Error[0]: error:0A00045C:SSL routines::tlsv13 alert certificate required",
            "requires a client certificate"
        ),
        (
            "OpenSSL Error[0]: error:0A000415:SSL routines::sslv3 alert certificate expired",
            "client certificate: it has expired"
        ),
        ("OpenSSL Error[0]: error:0A000418:SSL routines::tlsv1 alert unknown ca", "does not trust its issuer"),
        (verifyFailed, "is not signed by /ca.crt or does not name this host"),
        ("OpenSSL Error[0]: error:0A00010B:SSL routines::wrong version number", "TLS handshake failed"),
    ])
    func alertsAndLines(detail: String, expected: String) {
        let reason = MQTTError.tlsReason(detail: detail, verifyResult: nil, caFile: "/ca.crt", host: "h")
        #expect(reason.contains(expected), "\(reason)")
    }
}
