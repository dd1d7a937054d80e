internal import CMosquitto
internal import COpenSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where the libmosquitto callbacks put what they saw. Callbacks run inside `mosquitto_loop` on our thread with the
/// library's callback mutex held, so they only append here and never block or call back into the library.
final class MQTTEventSink: Sendable {
    private struct State {
        var events: [MQTTEvent] = []
        var connected = false
        /// A CONNACK success was seen on this client.
        var everConnected = false
        var lastLibraryError: String?
        var libraryLogLines = 0
        /// OpenSSL's verification result of the last failed handshake (X509_V_ERR_*), when it was not OK.
        var verifyResult: Int?
    }

    private let state = Mutex(State())

    func append(_ event: MQTTEvent) {
        state.withLock { state in
            switch event {
            case .connected(let reasonCode):
                state.connected = reasonCode == 0
                state.everConnected = state.everConnected || reasonCode == 0
            case .disconnected: state.connected = false
            default: break
            }
            state.events.append(event)
        }
    }

    func noteLibraryError(_ text: String) {
        state.withLock { $0.lastLibraryError = text }
    }

    func noteLibraryLogLine() {
        state.withLock { $0.libraryLogLines += 1 }
    }

    var libraryLogLines: Int { state.withLock { $0.libraryLogLines } }

    func noteVerifyResult(_ result: Int) {
        state.withLock { $0.verifyResult = result }
    }

    func takeVerifyResult() -> Int? {
        state.withLock { state in
            defer { state.verifyResult = nil }
            return state.verifyResult
        }
    }

    func take() -> [MQTTEvent] {
        state.withLock { state in
            defer { state.events.removeAll(keepingCapacity: true) }
            return state.events
        }
    }

    func putBack(_ events: [MQTTEvent]) {
        state.withLock { $0.events.insert(contentsOf: events, at: 0) }
    }

    var connected: Bool { state.withLock { $0.connected } }
    var everConnected: Bool { state.withLock { $0.everConnected } }

    func takeLastLibraryError() -> String? {
        state.withLock { state in
            defer { state.lastLibraryError = nil }
            return state.lastLibraryError
        }
    }

    static func from(_ userdata: UnsafeMutableRawPointer?) -> MQTTEventSink? {
        guard let userdata else { return nil }
        return Unmanaged<MQTTEventSink>.fromOpaque(userdata).takeUnretainedValue()
    }
}

extension MQTTClient {
    /// Installs the callbacks once, right after `mosquitto_new`, before any loop runs (never from a callback).
    static func installCallbacks(_ handle: OpaquePointer) {
        mosquitto_connect_v5_callback_set(handle) { _, userdata, reasonCode, _, _ in
            MQTTEventSink.from(userdata)?.append(.connected(reasonCode: Int(reasonCode)))
        }
        mosquitto_disconnect_v5_callback_set(handle) { _, userdata, reasonCode, _ in
            MQTTEventSink.from(userdata)?.append(.disconnected(reasonCode: Int(reasonCode)))
        }
        mosquitto_publish_v5_callback_set(handle) { _, userdata, mid, reasonCode, _ in
            MQTTEventSink.from(userdata)?.append(.published(mid: mid, reasonCode: Int(reasonCode)))
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, userdata, mid, count, granted, _ in
            let codes = granted.map { pointer in (0..<Int(count)).map { Int(pointer[$0]) } } ?? []
            MQTTEventSink.from(userdata)?.append(.subscribed(mid: mid, granted: codes))
        }
        mosquitto_message_v5_callback_set(handle) { _, userdata, message, properties in
            guard let message = message?.pointee, let sink = MQTTEventSink.from(userdata) else { return }
            sink.append(.message(MQTTClient.receivedMessage(message, properties)))
        }
        mosquitto_log_callback_set(handle) { mosq, userdata, level, text in
            MQTTEventSink.from(userdata)?.noteLibraryLogLine()
            // Only errors: they carry the OpenSSL reason (e.g. "certificate verify failed") the return code lacks.
            guard level == MOSQ_LOG_ERR, let text, let sink = MQTTEventSink.from(userdata) else { return }
            let line = String(cString: text)
            sink.noteLibraryError(line)
            // The handshake's SSL object still lives while libmosquitto logs its failure: keep why verification
            // failed (expired, not yet valid, wrong host, unknown CA), which the error line does not say.
            if line.hasPrefix("OpenSSL"), let ssl = mosquitto_ssl_get(mosq) {
                let result = Int(SSL_get_verify_result(OpaquePointer(ssl)))
                if result != Int(X509_V_OK) { sink.noteVerifyResult(result) }
            }
        }
    }

    private static func receivedMessage(_ message: mosquitto_message, _ properties: OpaquePointer?) -> MQTTMessage {
        let payload: [UInt8]
        if let bytes = message.payload, message.payloadlen > 0 {
            payload = Array(UnsafeRawBufferPointer(start: bytes, count: Int(message.payloadlen)))
        } else {
            payload = []
        }
        var received = MQTTMessage(
            topic: message.topic.map { String(cString: $0) } ?? "", payload: payload, qos: Int(message.qos),
            retain: message.retain)
        var property = properties
        while let current = property {
            switch mosquitto_property_identifier(current) {
            case Int32(MQTT_PROP_CONTENT_TYPE.rawValue):
                var value: UnsafeMutablePointer<CChar>?
                mosquitto_property_read_string(current, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), &value, false)
                received.contentType = takeString(value)
            case Int32(MQTT_PROP_USER_PROPERTY.rawValue):
                var name: UnsafeMutablePointer<CChar>?
                var value: UnsafeMutablePointer<CChar>?
                mosquitto_property_read_string_pair(
                    current, Int32(MQTT_PROP_USER_PROPERTY.rawValue), &name, &value, false)
                received.userProperties.append(UserProperty(takeString(name) ?? "", takeString(value) ?? ""))
            case Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue):
                var value: UnsafeMutablePointer<CChar>?
                mosquitto_property_read_string(current, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), &value, false)
                received.responseTopic = takeString(value)
            case Int32(MQTT_PROP_CORRELATION_DATA.rawValue):
                var value: UnsafeMutableRawPointer?
                var length: UInt16 = 0
                mosquitto_property_read_binary(
                    current, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), &value, &length, false)
                if let value {
                    received.correlationData = Array(UnsafeRawBufferPointer(start: value, count: Int(length)))
                    free(value)
                }
            default:
                break
            }
            property = mosquitto_property_next(current)
        }
        return received
    }

    /// Copies and frees a string the property readers allocated.
    private static func takeString(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
        guard let pointer else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
