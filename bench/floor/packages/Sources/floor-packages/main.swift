// The runtime floor with Pantau's packages (issue 17). Parses its arguments with swift-argument-parser, logs one line
// with swift-log, computes an HMAC-SHA256 with swift-crypto, round-trips a protobuf message with swift-protobuf,
// encodes JSON with FoundationEssentials, touches libsqlite3, libyaml, libmosquitto and libmodbus once each, starts
// `--threads` idle threads, then runs one service in a swift-service-lifecycle ServiceGroup (SIGTERM and SIGINT
// end it, as in `pantau run`) that sleeps so bench/footprint.py can sample its RSS and smaps.
import ArgumentParser
import CFloor
import Crypto
import FoundationEssentials
import Logging
import ServiceLifecycle
import SwiftProtobuf

#if canImport(Glibc)
    import Glibc
#endif

struct Hello: Encodable { var hello = "world" }

struct Sleeper: Service {
    let seconds: Int
    func run() async throws {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(seconds)) }
    }
}

@main
struct FloorPackages: AsyncParsableCommand {
    @Option(help: "Idle threads to start.") var threads = 0
    @Option(help: "Seconds to stay up.") var seconds = 5

    func run() async throws {
        let logger = Logger(label: "floor")
        let json = try JSONEncoder().encode(Hello())
        let key = SymmetricKey(data: [UInt8](repeating: 7, count: 32))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(json), using: key)
        let stamp = Google_Protobuf_Timestamp(seconds: Int64(Date().timeIntervalSince1970), nanos: 5)
        let bytes: [UInt8] = try stamp.serializedBytes()
        let back = try Google_Protobuf_Timestamp(serializedBytes: bytes)
        logger.info("\(String(decoding: json, as: UTF8.self)) mac \(Array(mac).count) bytes, protobuf \(back.seconds)")
        touchCLibraries(logger)
        for _ in 0..<threads {
            var thread = pthread_t()
            _ = pthread_create(&thread, nil, { _ in
                while true { sleep(60) }
            }, nil)
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: Sleeper(seconds: seconds), successTerminationBehavior: .gracefullyShutdownGroup)
                ], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    func touchCLibraries(_ logger: Logger) {
        var db: OpaquePointer?
        sqlite3_open(":memory:", &db)
        sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", nil, nil, nil)
        sqlite3_close(db)
        var parser = yaml_parser_t()
        yaml_parser_initialize(&parser)
        let doc = Array("a: 1\n".utf8)
        yaml_parser_set_input_string(&parser, doc, doc.count)
        var event = yaml_event_t()
        var events = 0
        while yaml_parser_parse(&parser, &event) == 1 {
            let done = event.type == YAML_STREAM_END_EVENT
            yaml_event_delete(&event)
            events += 1
            if done { break }
        }
        yaml_parser_delete(&parser)
        mosquitto_lib_init()
        let mosq = mosquitto_new("floor", true, nil)
        mosquitto_destroy(mosq)
        let ctx = modbus_new_tcp("127.0.0.1", 1502)
        modbus_free(ctx)
        logger.info("sqlite \(String(cString: sqlite3_libversion())), yaml events \(events)")
    }
}
