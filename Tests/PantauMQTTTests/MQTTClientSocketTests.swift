import Foundation
import PantauCore
import Testing

@testable import PantauMQTT

#if canImport(Glibc)
    import Glibc
#endif

/// A broker that answers CONNECT with a bare MQTT 5 CONNACK (no Receive Maximum) and never acknowledges a
/// PUBLISH: what the client sends is exactly what its own window lets out.
private final class SilentBroker {
    let port: Int
    private let listener: Int32
    private var connection: Int32 = -1
    private var buffer: [UInt8] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, sa, &length) == 0
            }
        }
        listener = fd
        guard bound else { throw MQTTError(code: .other, message: "cannot listen") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        if connection >= 0 { close(connection) }
        close(listener)
    }

    /// Accepts the client's connection (its TCP connect finished inside `connect`).
    func accept() -> Bool {
        var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, 5000) > 0 else { return false }
        connection = Glibc.accept(listener, nil, nil)
        return connection >= 0
    }

    /// Control packet types (high nibble of the first byte) received whole so far, reading what arrived within
    /// `waitMs`.
    func packets(waitMs: Int32) -> [UInt8] {
        var ready = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        while poll(&ready, 1, waitMs) > 0 {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = recv(connection, &chunk, chunk.count, 0)
            guard count > 0 else { break }
            buffer += chunk.prefix(count)
        }
        var types: [UInt8] = []
        var index = 0
        while index < buffer.count {
            var length = 0
            var shift = 0
            var cursor = index + 1
            var complete = false
            while cursor < buffer.count {
                let byte = buffer[cursor]
                length |= Int(byte & 0x7f) << shift
                shift += 7
                cursor += 1
                if byte & 0x80 == 0 {
                    complete = true
                    break
                }
            }
            guard complete, cursor + length <= buffer.count else { break }
            types.append(buffer[index] >> 4)
            index = cursor + length
        }
        return types
    }

    /// CONNACK: session not present, success, no properties.
    func connack() {
        let packet: [UInt8] = [0x20, 0x03, 0x00, 0x00, 0x00]
        _ = send(connection, packet, packet.count, 0)
    }
}

@Suite("MQTTClient socket and window settings", .serialized)
struct MQTTClientSocketTests {
    private func connected(window: Int) throws -> (MQTTClient, SilentBroker) {
        let broker = try SilentBroker()
        let config = MQTTConfig(
            brokers: [.init(host: "127.0.0.1", port: broker.port)], clientId: "window-test", inflightWindow: window)
        let client = try MQTTClient(config: config)
        try client.connect(host: "127.0.0.1", port: broker.port, keepaliveSeconds: 30)
        #expect(broker.accept())
        _ = drive(client, upToMs: 500) { _ in false }
        #expect(broker.packets(waitMs: 1000) == [1])  // CONNECT
        broker.connack()
        _ = drive(client) { $0.contains(.connected(reasonCode: 0)) }
        #expect(client.isConnected)
        return (client, broker)
    }

    @Test("the connection's socket has Nagle's algorithm off (TCP_NODELAY)")
    func noDelay() throws {
        let (client, _) = try connected(window: 64)
        var flag: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(client.socketDescriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &flag, &length) == 0)
        #expect(flag == 1)
    }

    @Test("a corked burst sets TCP_CORK while it runs and clears it after, so the burst leaves at once")
    func corkedBurst() throws {
        let (client, broker) = try connected(window: 64)
        func cork() -> Int32 {
            var flag: Int32 = -1
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(client.socketDescriptor, Int32(IPPROTO_TCP), TCP_CORK, &flag, &length)
            return flag
        }
        let inside = try client.corked { () throws(MQTTError) -> Int32 in
            for index in 0..<3 {
                _ = try client.publish(topic: "t/\(index)", payload: [0x61], qos: 1, retain: false)
            }
            return cork()
        }
        #expect(inside == 1)
        #expect(cork() == 0)
        var publishes = 0
        for _ in 0..<50 where publishes < 3 {
            client.loop(timeoutMs: 10)
            publishes = broker.packets(waitMs: 20).filter { $0 == 3 }.count
        }
        #expect(publishes == 3)
    }

    @Test("the library lets out as many QoS 1 messages unacknowledged as mqtt.inflight says", arguments: [5, 64])
    func windowReachesTheLibrary(window: Int) throws {
        let (client, broker) = try connected(window: window)
        for index in 0..<(window + 30) {
            _ = try client.publish(
                topic: "t/\(index)", payload: Array(repeating: 0x61, count: 100), qos: 1, retain: false)
        }
        var publishes = 0
        for _ in 0..<50 where publishes < window {
            client.loop(timeoutMs: 10)
            publishes = broker.packets(waitMs: 20).filter { $0 == 3 }.count
        }
        // A few more turns: nothing beyond the window may follow while no PUBACK came.
        for _ in 0..<5 { client.loop(timeoutMs: 10) }
        publishes = broker.packets(waitMs: 100).filter { $0 == 3 }.count
        #expect(publishes == window)
    }
}
