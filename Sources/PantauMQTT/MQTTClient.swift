internal import CMosquitto
import PantauCore
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// libmosquitto is initialised once per process, on first use (Swift runs a global's initialiser exactly once).
private let libraryReady: Bool = {
    mosquitto_lib_init()
    return true
}()

/// One MQTT 5 connection through libmosquitto, driven by `loop(timeoutMs:)` from the caller's own thread.
///
/// Not thread safe: one thread creates, configures, loops and publishes. Callbacks only queue `MQTTEvent`s, which the
/// owner takes with `takeEvents()` after each loop turn. Make a new client for each connection attempt so nothing
/// from an old session (libmosquitto's RAM resend queue) survives: the journal is the truth.
public final class MQTTClient {
    private let handle: OpaquePointer
    private let sink = MQTTEventSink()
    /// `host:port` of the last connect call, for messages.
    public private(set) var broker = ""
    /// The settings of `setTLS`, for messages and the TLS diagnosis.
    private var tls: MQTTConfig.TLS?
    private var caFile: String? { tls?.caFile }
    private var port = 0

    /// A clean-start MQTT 5 client with this client id.
    public init(clientId: String) throws(MQTTError) {
        _ = libraryReady
        if let problem = Self.clientIdProblem(clientId) {
            throw MQTTError(code: .other, message: "invalid MQTT client id: \(problem)")
        }
        let sink = self.sink
        guard let handle = mosquitto_new(clientId, true, Unmanaged.passUnretained(sink).toOpaque()) else {
            throw MQTTError(code: .other, message: "mosquitto_new failed for client id \(clientId)")
        }
        self.handle = handle
        try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5), "set MQTT 5")
        // Nagle's algorithm off: a burst of small PUBLISHes goes out as written instead of waiting behind the
        // first one's ACK (libmosquitto leaves TCP_NODELAY off unless asked).
        try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "set TCP_NODELAY")
        Self.installCallbacks(handle)
    }

    /// A client with the credentials and TLS settings of a gateway configuration.
    public convenience init(config: MQTTConfig, clientId: String? = nil) throws(MQTTError) {
        try self.init(clientId: clientId ?? config.clientId)
        try setSendMaximum(config.inflightWindow)
        if let username = config.username {
            try setCredentials(username: username, password: config.password)
        }
        if let tls = config.tls {
            try setTLS(tls)
        }
    }

    deinit {
        mosquitto_destroy(handle)
    }

    /// The longest client id (and any MQTT string) in bytes.
    public static let maxClientIdBytes = 65_535

    /// Why libmosquitto would refuse `id`, or nil. Checked before `mosquitto_new`: libmosquitto 2.0.11 fails
    /// such an id after zeroing its socketpair descriptors and then closes descriptor 0, which is not its own.
    public static func clientIdProblem(_ id: String) -> String? {
        let bytes = Array(id.utf8)
        if bytes.isEmpty { return "it is empty" }
        if bytes.count > maxClientIdBytes {
            return "it is \(bytes.count) bytes long; MQTT allows at most \(maxClientIdBytes)"
        }
        if bytes.contains(0) { return "it contains a NUL character" }
        let rc = id.withCString { mosquitto_validate_utf8($0, Int32(bytes.count)) }
        if rc != MOSQ_ERR_SUCCESS.rawValue {
            return "it contains characters MQTT does not allow (control characters or non-characters)"
        }
        return nil
    }

    /// The most QoS 1 and 2 messages the library keeps in flight at once; the ones published beyond it wait in
    /// its queue. libmosquitto's own default is 20; a broker that announces a smaller Receive Maximum in CONNACK
    /// lowers it. Set before `connect`.
    public func setSendMaximum(_ window: Int) throws(MQTTError) {
        let value = Int32(min(max(window, 1), 65_535))
        try check(mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, value), "set the in-flight window")
    }

    /// Username and optional password sent in CONNECT.
    public func setCredentials(username: String, password: String?) throws(MQTTError) {
        try check(mosquitto_username_pw_set(handle, username, password), "set username and password")
    }

    /// TLS 1.2 or newer with peer verification against `caFile` (never insecure), optionally a client certificate.
    public func setTLS(_ tls: MQTTConfig.TLS) throws(MQTTError) {
        let rc = mosquitto_tls_set(handle, tls.caFile, nil, tls.certFile, tls.keyFile) { _, _, _, _ in
            // An encrypted key has no password source here: fail instead of letting OpenSSL prompt on stdin.
            0
        }
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            throw MQTTError(
                code: .tls,
                message: "TLS files not usable (CA \(tls.caFile), cert \(tls.certFile ?? "-"), key "
                    + "\(tls.keyFile ?? "-")): \(Self.libraryString(rc))")
        }
        self.tls = tls
        try check(mosquitto_tls_opts_set(handle, 1, "tlsv1.2", nil), "set TLS options")
        try check(mosquitto_tls_insecure_set(handle, false), "enable TLS host name verification")
    }

    /// The Will the broker publishes if this connection ends without a DISCONNECT. Set before `connect`.
    public func setWill(topic: String, payload: [UInt8], qos: Int, retain: Bool) throws(MQTTError) {
        let rc = payload.withUnsafeBytes { bytes in
            mosquitto_will_set_v5(handle, topic, Int32(bytes.count), bytes.baseAddress, Int32(qos), retain, nil)
        }
        try check(rc, "set Will on \(topic)")
    }

    /// Starts connecting without waiting: the outcome arrives as `.connected` / `.disconnected` from `loop`.
    /// Host name resolution still blocks (getaddrinfo), so call it from a thread of ours.
    public func connect(host: String, port: Int, keepaliveSeconds: Int) throws(MQTTError) {
        broker = "\(host):\(port)"
        self.port = port
        // On loopback the TLS handshake can already fail in here.
        try check(mosquitto_connect_async(handle, host, Int32(port), Int32(keepaliveSeconds)), "connect")
    }

    /// Connects and waits for the CONNACK, at most `timeoutMs`. Other events seen meanwhile stay queued.
    public func connect(host: String, port: Int, keepaliveSeconds: Int, timeoutMs: Int) throws(MQTTError) {
        try connect(host: host, port: port, keepaliveSeconds: keepaliveSeconds)
        let deadline = Self.monotonicMillis() + Int64(timeoutMs)
        var kept: [MQTTEvent] = []
        defer { sink.putBack(kept) }
        while true {
            let remaining = deadline - Self.monotonicMillis()
            guard remaining > 0 else {
                throw MQTTError(code: .timeout, message: "no CONNACK from \(broker) within \(timeoutMs) ms")
            }
            let loopError = loop(timeoutMs: Int(min(remaining, 50)))
            for event in takeEvents() {
                if case .connected(let reasonCode) = event {
                    if reasonCode == 0 { return }
                    throw MQTTError.connectRefused(reasonCode: reasonCode, broker: broker)
                }
                kept.append(event)
            }
            if let loopError { throw loopError }
        }
    }

    /// One turn of the network loop: reads, writes and keepalive, waiting at most `timeoutMs`.
    /// Returns the failure when the connection is unusable (the owner reconnects with a new client).
    @discardableResult
    public func loop(timeoutMs: Int) -> MQTTError? {
        let rc = mosquitto_loop(handle, Int32(timeoutMs), 1)
        let savedErrno = errno
        guard rc != MOSQ_ERR_SUCCESS.rawValue else { return nil }
        return failure(rc, broker.isEmpty ? "loop" : broker, savedErrno)
    }

    /// The connection's socket, for the owner's own `poll()` beside other descriptors (-1 when there is none).
    /// Then drive the connection with `loopRead`, `loopWrite` (when `wantsWrite`) and `loopMisc` instead of `loop`.
    public var socketDescriptor: Int32 { mosquitto_socket(handle) }

    /// Output is waiting for the socket to become writable.
    public var wantsWrite: Bool { mosquitto_want_write(handle) }

    /// Reads what the socket has; the failure when the connection is unusable.
    public func loopRead() -> MQTTError? { step(mosquitto_loop_read(handle, 1)) }

    /// Writes what is queued; the failure when the connection is unusable.
    public func loopWrite() -> MQTTError? { step(mosquitto_loop_write(handle, 1)) }

    /// Keepalive: sends PINGREQ when due and ends a connection whose PINGRESP is overdue.
    public func loopMisc() -> MQTTError? { step(mosquitto_loop_misc(handle)) }

    private func step(_ rc: Int32) -> MQTTError? {
        let savedErrno = errno
        guard rc != MOSQ_ERR_SUCCESS.rawValue else { return nil }
        return failure(rc, broker.isEmpty ? "loop" : broker, savedErrno)
    }

    /// The events queued by callbacks since the last call, oldest first.
    public func takeEvents() -> [MQTTEvent] {
        let events = sink.take()
        if libraryLogOn && sink.everConnected {
            // The log callback is for the handshake's errors (the OpenSSL reason). Once connected it goes: with a
            // callback set, libmosquitto formats a debug line (malloc, vsnprintf) for every PUBLISH and PUBACK.
            // A failure later is diagnosed by the next attempt's handshake, which has a client of its own.
            mosquitto_log_callback_set(handle, nil)
            libraryLogOn = false
        }
        return events
    }

    /// The library's log callback is installed (until the first CONNACK success is taken).
    private(set) var libraryLogOn = true

    /// Lines the library has handed to the log callback, any level (tests count them).
    var libraryLogLines: Int { sink.libraryLogLines }

    /// True between a successful CONNACK and the end of the connection.
    public var isConnected: Bool { sink.connected }

    /// Queues a PUBLISH and returns its message id (PUBACK comes back as `.published(mid:reasonCode:)`).
    /// Refuses when not connected: libmosquitto would otherwise keep QoS > 0 messages in RAM without bound.
    public func publish(
        topic: String, payload: [UInt8], qos: Int, retain: Bool, contentType: String? = nil,
        userProperties: [UserProperty] = [], correlationData: [UInt8]? = nil, responseTopic: String? = nil
    ) throws(MQTTError) -> Int32 {
        guard isConnected else {
            throw MQTTError(code: .tcp, message: "not connected to \(broker): not publishing \(topic)")
        }
        var properties: OpaquePointer?
        defer { mosquitto_property_free_all(&properties) }
        if let contentType {
            mosquitto_property_add_string(&properties, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), contentType)
        }
        if let responseTopic {
            mosquitto_property_add_string(&properties, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), responseTopic)
        }
        if let correlationData {
            correlationData.withUnsafeBytes { bytes in
                _ = mosquitto_property_add_binary(
                    &properties, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), bytes.baseAddress,
                    UInt16(clamping: bytes.count))
            }
        }
        for property in userProperties {
            mosquitto_property_add_string_pair(
                &properties, Int32(MQTT_PROP_USER_PROPERTY.rawValue), property.name, property.value)
        }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { bytes in
            mosquitto_publish_v5(
                handle, &mid, topic, Int32(bytes.count), bytes.baseAddress, Int32(qos), retain, properties)
        }
        try check(rc, "publish to \(topic)")
        return mid
    }

    /// Runs `body` with the socket corked (TCP_CORK): the packets it queues (libmosquitto writes each PUBLISH at
    /// once) leave together in as few segments as fit when it returns, instead of one segment per message as
    /// TCP_NODELAY alone would send them. A burst from the window costs the kernel one send, not one per message.
    public func corked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let socket = mosquitto_socket(handle)
        guard socket >= 0 else { return try body() }
        Self.setCork(socket, on: true)
        defer { Self.setCork(socket, on: false) }
        return try body()
    }

    private static func setCork(_ socket: Int32, on: Bool) {
        var flag: Int32 = on ? 1 : 0
        _ = setsockopt(socket, Int32(IPPROTO_TCP), TCP_CORK, &flag, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Sends SUBSCRIBE and returns its message id (SUBACK comes back as `.subscribed`). With `retainAsPublished`
    /// the broker keeps the retain flag on live messages too (MQTT 5), so a watcher can tell retained state apart.
    public func subscribe(_ filter: String, qos: Int, retainAsPublished: Bool = false) throws(MQTTError) -> Int32 {
        var mid: Int32 = 0
        let options = retainAsPublished ? Int32(MQTT_SUB_OPT_RETAIN_AS_PUBLISHED.rawValue) : 0
        try check(mosquitto_subscribe_v5(handle, &mid, filter, Int32(qos), options, nil), "subscribe to \(filter)")
        return mid
    }

    /// Sends DISCONNECT (normal, so the broker discards the Will) and closes the socket.
    public func disconnect() {
        mosquitto_disconnect_v5(handle, 0, nil)
    }

    /// Closes the socket without DISCONNECT, as a crash or a dead link would: the broker publishes the Will.
    func abandonConnection() {
        let socket = mosquitto_socket(handle)
        if socket >= 0 { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    private func check(_ rc: Int32, _ what: String) throws(MQTTError) {
        let savedErrno = errno
        guard rc != MOSQ_ERR_SUCCESS.rawValue else { return }
        throw failure(rc, broker.isEmpty ? what : "\(what) (\(broker))", savedErrno)
    }

    /// The error for a failed call, with the library's own log line (the OpenSSL reason for a TLS failure).
    private func failure(_ rc: Int32, _ context: String, _ savedErrno: Int32) -> MQTTError {
        decorated(MQTTError.library(rc, context: context, errnoValue: savedErrno))
    }

    /// Why the connection ended, from a `.disconnected` event's code: a broker's MQTT reason code (≥ 0x80) or a
    /// libmosquitto result, with the TLS diagnosis when the handshake or a TLS alert ended it (a broker that wants
    /// a client certificate ends the connection this way, after the connect call returned).
    public func endedError(reasonCode: Int) -> MQTTError {
        let fromBroker = reasonCode >= 0x80
        let text = fromBroker ? MQTTError.reasonString(reasonCode) : MQTTError.libraryString(Int32(reasonCode))
        let error = MQTTError(
            code: fromBroker ? MQTTError.operationCode(reasonCode) : .tcp, reasonCode: fromBroker ? reasonCode : nil,
            message: "connection to \(broker.isEmpty ? "?" : broker) ended: \(text)")
        return fromBroker ? error : decorated(error)
    }

    /// Adds the library's last error line and, for TLS, what it means (the diagnosis `mqtt-test` shows too).
    private func decorated(_ error: MQTTError) -> MQTTError {
        var error = error
        let verifyResult = sink.takeVerifyResult()
        var line = sink.takeLastLibraryError()
        if line == nil, let tls, !sink.everConnected, error.code == .tcp {
            // No OpenSSL line: a TLS 1.3 alert may have been lost in a reset. Ask the broker once more, alone.
            line = TLSDiagnosis.probe(host: host, port: port, tls: tls)
        }
        guard let detail = line else { return error }
        // A TLS alert (e.g. "certificate required") surfaces as a lost connection; the OpenSSL line says why.
        if detail.hasPrefix("OpenSSL") || verifyResult != nil {
            error.code = .tls
            let reason = MQTTError.tlsReason(detail: detail, verifyResult: verifyResult, caFile: caFile, host: host)
            if error.message.hasSuffix(".") { error.message.removeLast() }
            // The library's generic words after "<context>: " ("Protocol error", which is strerror(EPROTO), "The
            // connection was lost") say less than the reason: the reason replaces them.
            if let separator = error.message.firstRange(of: ": ") {
                error.message = String(error.message[..<separator.lowerBound])
            }
            error.message += ": \(reason) (\(detail))"
        } else {
            error.message += " (\(detail))"
        }
        return error
    }

    private static func libraryString(_ rc: Int32) -> String { MQTTError.libraryString(rc) }

    /// The host of `broker`, for messages.
    private var host: String { broker.split(separator: ":").dropLast().joined(separator: ":") }

    static func monotonicMillis() -> Int64 {
        Int64(SystemClock().monotonicNanos() / 1_000_000)
    }
}
