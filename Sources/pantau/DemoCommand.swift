import ArgumentParser
import FoundationEssentials
import Logging
import PantauCore
import PantauGateway
import PantauMQTT
import PantauModbus
import PantauPlatform
import Synchronization
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole chain without hardware: a local mosquitto, simulated sensors and the gateway.",
        discussion: """
            Starts mosquitto on a free loopback port, serves an air-quality station, a river level gauge (the river \
            rises about 20 cm a minute, so flood alerts follow) and a rain gauge as Modbus TCP devices, runs the \
            gateway on an embedded configuration and prints every MQTT message it publishes. Ctrl-C stops.
            """)

    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).") var duration: Double?
    @Option(help: "The mosquitto broker binary.") var mosquitto = "/usr/sbin/mosquitto"
    @Option(help: "Gateway log level (the demo shows warnings and worse).") var logLevel: Logger.Level = .warning

    func run() async throws {
        JournaldLogHandler.bootstrap(logLevel: logLevel)
        let logger = Logger(label: "pantau.demo")
        guard FileSystem.exists(mosquitto) else {
            throw fail(
                "no mosquitto at \(mosquitto)", hint: "scripts/bootstrap.sh installs it (apt-get install mosquitto)",
                code: .unavailable)
        }
        var template = Array("/tmp/pantau-demo-XXXXXX".utf8CString)
        guard let dirPointer = mkdtemp(&template) else {
            throw fail("cannot create a temporary folder", code: .ioError)
        }
        let dir = String(cString: dirPointer)
        defer { removeTree(dir) }

        guard let brokerPort = freeLoopbackPort() else { throw fail("no free loopback port", code: .unavailable) }
        let conf = "listener \(brokerPort) 127.0.0.1\nallow_anonymous true\npersistence false\n"
        guard writeFile("\(dir)/mosquitto.conf", conf) else {
            throw fail("cannot write \(dir)/mosquitto.conf", code: .ioError)
        }
        let broker = try ChildProcess(
            path: mosquitto, arguments: ["-c", "\(dir)/mosquitto.conf"], logPath: "\(dir)/mosquitto.log")
        defer { broker.terminate() }
        guard waitForPort(brokerPort, timeoutMs: 5000) else {
            throw fail("mosquitto did not start; see \(dir)/mosquitto.log", code: .unavailable)
        }

        let library = ProfileLibrary(directories: ConfigLoading.defaultProfileDirectories())
        let wanted = ["vaisala-aqt530", "qdy30a", "sonbest-xm9505"]
        let profiles = try wanted.map { id -> DeviceProfile in
            guard let p = library[id] else {
                throw fail(
                    "the shipped profile \(id) was not found in \(library.directories)", hint: "set PANTAU_PROFILES",
                    code: .config)
            }
            return p
        }
        // The board's real clock and its synchronisation state, as the gateway uses them (issue 14).
        let clock = KernelClock()
        let simulator = ModbusSimulator(
            devices: profiles.enumerated().map { ($0.offset + 1, $0.element) }, clock: clock, logger: logger)
        // The river starts just below Siaga 3 and rises fast enough to show the alerts within a few minutes.
        simulator.setSignal(unit: 2, point: "level", .ramp(start: 140, perMinute: 20, from: clock.now()))
        // A steady shower of 0.5 mm a minute (30 mm/h, "sangat lebat" per hour) on the rain gauge's counter.
        simulator.setSignal(unit: 3, point: "rain", .counter(perMinute: 0.5, from: clock.now(), modulus: 6553.6))
        let devicePort: Int
        do { devicePort = try simulator.serveTCP(port: 0) } catch { throw fail("\(error)", code: .unavailable) }
        defer { simulator.stop() }

        let yaml = Self.embeddedConfig(brokerPort: brokerPort, devicePort: devicePort, dir: dir)
        let config: GatewayConfig
        switch ConfigParser.parse(yaml, file: "<demo configuration>", defaultProfileDirectories: library.directories) {
        case .success(let c): config = c
        case .failure(let e): throw fail("the embedded configuration is invalid:\n\(e)", code: .software)
        }
        let gateway = try Gateway(config: config, clock: clock, logger: logger)
        gateway.start()
        print("demo: mosquitto on 127.0.0.1:\(brokerPort), simulated devices on 127.0.0.1:\(devicePort)")
        print("demo: subscribe yourself with: mosquitto_sub -p \(brokerPort) -t 'pantau/#' -v")
        print(Self.clockLine(clock.clockSample()))
        print("demo: messages as they arrive (Ctrl-C stops):")
        flushStandardOutput()

        let subscriber = DemoSubscriber(port: brokerPort)
        subscriber.start()
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        if let duration {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await Task.sleep(for: .milliseconds(Int(duration * 1000))) }
                group.addTask { for await _ in signals { break } }
                await group.next()
                group.cancelAll()
            }
        } else {
            for await _ in signals { break }
        }
        print("demo: stopping")
        gateway.stop(drainTimeoutMs: 1000)
        subscriber.stop()
        print("demo: \(subscriber.count) messages received")
    }

    /// What the demo says about the board's clock: synchronised, or not (times then run on the boot clock and
    /// every message is marked `tq: unsynced`, docs/install.md).
    static func clockLine(_ sample: ClockSample) -> String {
        sample.synced
            ? "demo: clock synced"
            : "demo: clock NOT SYNCED: times run on the boot clock, messages are marked tq: unsynced"
    }

    static func embeddedConfig(brokerPort: Int, devicePort: Int, dir: String) -> String {
        """
        gateway: {site: demo-tangerang, id: gw-demo}
        buses:
          - {name: sim, type: tcp, host: 127.0.0.1, port: \(devicePort)}
        devices:
          - name: aq-01
            bus: sim
            unit: 1
            profile: vaisala-aqt530
            poll_interval: 2s
            air_quality: {indices: [ispu, aqi]}
          - name: river-01
            bus: sim
            unit: 2
            profile: qdy30a
            poll_interval: 5s
            flood:
              - {point: level, siaga3: 150, siaga2: 200, siaga1: 250, hysteresis: 5, min_dwell: 4s,
                 rate_of_rise: 20, rate_period: 5m, poll_intervals: {siaga3: 3s, siaga2: 2s, siaga1: 1s}}
          - name: rain-01
            bus: sim
            unit: 3
            profile: sonbest-xm9505
            poll_interval: 5s
            rain: {point: rain, mm_per_count: 1, counter_modulus: 6553.6}
        mqtt:
          brokers: [127.0.0.1:\(brokerPort)]
          client_id: pantau-demo
        journal: {path: \(dir)/journal.sqlite, durability: normal}
        aggregation: {windows: [1m, 15m, 1h]}
        status: {socket: \(dir)/status.sock}
        """
    }
}

/// Prints what the gateway publishes, one line a message, from a thread of its own.
final class DemoSubscriber: Sendable {
    let port: Int
    private let running = Atomic<Bool>(true)
    private let received = Atomic<Int>(0)
    private let thread = Mutex<OwnedThread?>(nil)

    init(port: Int) { self.port = port }

    var count: Int { received.load(ordering: .relaxed) }

    func start() {
        thread.withLock { $0 = OwnedThread { [self] in loop() } }
    }

    func stop() {
        running.store(false, ordering: .relaxed)
        thread.withLock { t -> OwnedThread? in
            defer { t = nil }
            return t
        }?.join()
    }

    private func loop() {
        guard let client = try? MQTTClient(clientId: "pantau-demo-viewer") else { return }
        do {
            try client.connect(host: "127.0.0.1", port: port, keepaliveSeconds: 30, timeoutMs: 5000)
            _ = try client.subscribe("pantau/#", qos: 1)
        } catch {
            printError("demo viewer: \(error)")
            return
        }
        while running.load(ordering: .relaxed) {
            client.loop(timeoutMs: 100)
            for event in client.takeEvents() {
                guard case .message(let m) = event else { continue }
                received.add(1, ordering: .relaxed)
                print(Self.describe(m))
                flushStandardOutput()
            }
        }
        client.disconnect()
    }

    struct Record: Decodable {
        var n: String?
        var v: Double?
        var vs: String?
        var vb: Bool?
        var u: String?
        var q: String?
        var seq: Int?
        var hist: Bool?
        var tq: String?
    }

    /// `HH:MM:SS topic: pm2_5=23.4 ug/m3 ...` for telemetry, the JSON body (shortened) for the rest.
    static func describe(_ m: MQTTMessage) -> String {
        let now = KernelClock().now() / 1000
        let clock = "\(pad((now / 3600) % 24)):\(pad((now / 60) % 60)):\(pad(now % 60))Z"
        let topic = m.topic.split(separator: "/").dropFirst(3).joined(separator: "/")
        if m.topic.hasSuffix("/telemetry"),
            let records = try? JSONDecoder().decode([Record].self, from: Data(m.payload))
        {
            let values = records.compactMap { r -> String? in
                guard let n = r.n else { return nil }
                if r.q == "device_error" { return "\(n)=?" }
                let v = r.v.map { "\($0)" } ?? r.vs ?? r.vb.map { "\($0)" } ?? "?"
                return "\(n)=\(v)\(r.u.map { " \($0)" } ?? "")\(r.q == "out_of_range" ? " (out of range)" : "")"
            }
            let seq = records.first?.seq.map { "#\($0) " } ?? ""
            let quality = records.first?.tq.map { " [tq: \($0)]" } ?? ""
            return "\(clock) \(topic) \(seq)\(values.joined(separator: ", "))\(quality)"
        }
        var body = m.text
        if body.count > 240 { body = String(body.prefix(240)) + "..." }
        return "\(clock) \(topic)\(m.retain ? " (retained)" : "") \(body)"
    }

    static func pad(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
}

func writeFile(_ path: String, _ text: String) -> Bool {
    guard let f = fopen(path, "w") else { return false }
    defer { fclose(f) }
    return fputs(text, f) >= 0
}

/// Removes the demo's temporary folder (flat: it holds only files).
func removeTree(_ dir: String) {
    for name in FileSystem.list(dir) { unlink("\(dir)/\(name)") }
    rmdir(dir)
}
