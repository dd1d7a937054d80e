import PantauPlatform
import PantauYAML

/// Parses `gateway.yaml` into a validated `GatewayConfig`, reporting every problem as `file:line:column: message`.
public enum ConfigParser {
    /// - Parameters:
    ///   - defaultProfileDirectories: searched after the folders the config lists under `profiles:`.
    ///   - environment: looks up `password_env` (injected so tests need not touch the process environment).
    public static func parse(
        _ text: String, file: String, defaultProfileDirectories: [String] = [], library: ProfileLibrary? = nil,
        environment: @escaping (String) -> String? = FileSystem.environment
    ) -> Result<GatewayConfig, ConfigurationError> {
        parse(
            bytes: Array(text.utf8), file: file, defaultProfileDirectories: defaultProfileDirectories, library: library,
            environment: environment)
    }

    /// Parses the bytes of a configuration file: UTF-8 only, within `YAMLLimits.configuration`.
    public static func parse(
        bytes: [UInt8], file: String, defaultProfileDirectories: [String] = [], library: ProfileLibrary? = nil,
        environment: @escaping (String) -> String? = FileSystem.environment
    ) -> Result<GatewayConfig, ConfigurationError> {
        let reader = NodeReader(file: file)
        guard let root = reader.parseDocument(bytes: bytes, limits: .configuration) else {
            if reader.diagnostics.isEmpty {
                reader.error(at: YAMLMark(line: 1, column: 1), "the configuration is empty")
            }
            return .failure(ConfigurationError(reader.diagnostics))
        }
        let config = Parsing(reader: reader, file: file, environment: environment)
            .parse(root, defaultProfileDirectories: defaultProfileDirectories, extra: library)
        if let config, reader.diagnostics.isEmpty { return .success(config) }
        return .failure(ConfigurationError(reader.diagnostics))
    }

    /// Reads and parses a file; an unreadable file is reported like any other configuration error.
    public static func load(
        path: String, defaultProfileDirectories: [String],
        environment: @escaping (String) -> String? = FileSystem.environment
    ) -> Result<GatewayConfig, ConfigurationError> {
        do {
            let bytes = try FileSystem.readBytes(path, limit: YAMLLimits.configuration.maximumBytes)
            return parse(
                bytes: bytes, file: path, defaultProfileDirectories: defaultProfileDirectories,
                environment: environment)
        } catch {
            return .failure(
                ConfigurationError([
                    Diagnostic(
                        SourceLocation(file: path, line: 1, column: 1), "cannot read the configuration: \(error.reason)"
                    )
                ]))
        }
    }
}

struct Parsing {
    let reader: NodeReader
    let file: String
    let environment: (String) -> String?

    func parse(_ root: YAMLNode, defaultProfileDirectories: [String], extra: ProfileLibrary?) -> GatewayConfig? {
        guard let map = reader.mapping(root, what: "the configuration") else { return nil }
        let baseDir = FileSystem.directoryOf(file)

        var identity: GatewayIdentity?
        if let g = map.mapping("gateway", required: true) {
            let site = name(g, "site", required: true)
            let id = name(g, "id", required: true, maximumLength: IdentifierLimits.gatewayId)
            g.finish()
            if let site, let id { identity = GatewayIdentity(site: site, id: id) }
        }

        var profileDirs: [String] = []
        for item in map.list("profiles") ?? [] {
            guard let dir = reader.string(item, what: "a profile folder") else { continue }
            let path = FileSystem.resolve(dir, relativeTo: baseDir)
            if FileSystem.isDirectory(path) {
                profileDirs.append(path)
            } else {
                reader.error(item, "profile folder '\(path)' does not exist")
            }
        }
        var library = ProfileLibrary(directories: profileDirs + defaultProfileDirectories)
        if let extra { library.add(extra) }

        let buses = parseBuses(map)
        let devices = parseDevices(map, buses: buses, library: library)
        let mqtt = map.mapping("mqtt", required: true).flatMap { parseMQTT($0, identity: identity) }
        let journal = map.mapping("journal").map { parseJournal($0, baseDir: baseDir) } ?? JournalConfig()
        let aggregation = map.mapping("aggregation").map(parseAggregation) ?? AggregationConfig()
        var sparkplug: SparkplugConfig?
        if let sp = map.mapping("sparkplug") {
            let group = name(sp, "group_id", required: false)
            let node = name(sp, "edge_node_id", required: false)
            let host = name(sp, "primary_host_id", required: false)
            sp.finish()
            if let identity {
                sparkplug = SparkplugConfig(
                    groupId: group ?? identity.site, edgeNodeId: node ?? identity.id, primaryHostId: host)
            }
        }
        var socket = "/run/pantau/status.sock"
        if let s = map.mapping("status") {
            if let path = s.string("socket") { socket = FileSystem.resolve(path, relativeTo: baseDir) }
            s.finish()
        }
        var unsynced = UnsyncedTimePolicy.mark
        if let t = map.mapping("time") {
            unsynced = t.choice("unsynced", UnsyncedTimePolicy.allCases.map { ($0.rawValue, $0) }) ?? .mark
            t.finish()
        }
        let commands = map.mapping("commands").map { ConfigParser.parseCommands($0, reader: reader, baseDir: baseDir) }
        map.finish()
        guard let identity, let mqtt else { return nil }
        var config = GatewayConfig(
            identity: identity, buses: ConfigParser.attachSensors(buses.map { ($0.config, $0.node) }, devices, reader),
            devices: devices, mqtt: mqtt, journal: journal,
            aggregation: aggregation, profileDirectories: profileDirs + defaultProfileDirectories,
            statusSocket: socket, file: file)
        config.sparkplug = sparkplug ?? SparkplugConfig(groupId: identity.site, edgeNodeId: identity.id)
        config.unsyncedTime = unsynced
        config.commands = commands ?? .disabled
        return config
    }

    /// Names go into MQTT topics and the default client id, so they may not contain `/`, `+`, `#` or blanks, and
    /// are bounded: 64 characters (`id` of the gateway 32), so every topic and client id stays far within MQTT's
    /// limits (see `IdentifierLimits`).
    func name(
        _ m: MappingReader, _ key: String, required: Bool, maximumLength: Int = IdentifierLimits.name
    ) -> String? {
        guard let node = m.value(key, required: required), let text = reader.string(node, what: "'\(key)' in \(m.what)")
        else { return nil }
        let ok =
            !text.isEmpty
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
        if !ok {
            reader.error(
                node,
                "'\(key)' in \(m.what) may only use letters, digits, '-', '_' and '.' (it becomes part of MQTT topics), found '\(text)'"
            )
            return nil
        }
        if text.utf8.count > maximumLength {
            reader.error(
                node,
                "'\(key)' in \(m.what) is \(text.utf8.count) characters long, more than the \(maximumLength) "
                    + "allowed (it becomes part of MQTT topics and the client id)")
            return nil
        }
        return text
    }

    struct ParsedBus {
        var config: BusConfig
        var node: YAMLNode
    }

    func parseBuses(_ map: MappingReader) -> [ParsedBus] {
        var buses: [ParsedBus] = []
        var ttys: [String: (String, YAMLNode)] = [:]
        for item in map.list("buses", required: true) ?? [] {
            guard let b = reader.mapping(item, what: "a bus") else { continue }
            let busName = name(b, "name", required: true)
            let what = busName.map { "bus '\($0)'" } ?? "a bus"
            b.what = what
            let type = b.choice(
                "type",
                [
                    ("rtu", "rtu"), ("tcp", "tcp"), ("rtu_over_tcp", "rtu_over_tcp"), ("uart", "uart"),
                    ("sdi12", "sdi12"),
                ], required: true)
            var transport: BusConfig.Transport?
            if type == "tcp" {
                let host = b.string("host", required: true)
                let port = b.int("port", range: 1...65535) ?? 502
                if let host { transport = .tcp(host: host, port: port) }
            } else if type == "rtu_over_tcp" {
                transport = ConfigParser.rtuOverTCP(b, reader: reader, what: what)
            } else if type == "uart" {
                transport = ConfigParser.uart(b, reader: reader, what: what)
            } else if type == "sdi12" {
                transport = ConfigParser.sdi12(b, reader: reader, what: what)
            } else if type == "rtu" {
                let device = b.string("device", required: true)
                let serial = ConfigParser.lineSettings(b, reader: reader, what: what).applied(to: SerialSettings())
                let rs485 = b.bool("rs485") ?? false
                let delay = b.int("inter_frame_delay_us", range: 0...1_000_000)
                if let device, let node = b.value("device") {
                    // One port spelled two ways (`/dev//ttyUSB0`, `/dev/./ttyUSB0`, a symlink) is still one port.
                    let canonical = FileSystem.identity(device)
                    if let (other, _) = ttys[canonical] {
                        reader.error(
                            node,
                            "\(what) uses serial port '\(device)', which bus '\(other)' already owns; one bus per port")
                    } else {
                        ttys[canonical] = (busName ?? "?", node)
                    }
                    transport = .rtu(
                        RTUSettings(device: device, serial: serial, rs485: rs485, interFrameDelayMicros: delay))
                }
            }
            b.finish()
            guard let busName, let transport else { continue }
            if let earlier = buses.first(where: { $0.config.name == busName }) {
                reader.error(
                    b.value("name") ?? item,
                    "duplicate bus name '\(busName)' (first defined at line \(earlier.node.mark.line))")
                continue
            }
            buses.append(ParsedBus(config: BusConfig(name: busName, transport: transport), node: item))
        }
        return buses
    }

    func parseDevices(_ map: MappingReader, buses: [ParsedBus], library: ProfileLibrary) -> [DeviceConfig] {
        var devices: [DeviceConfig] = []
        var names: [String: YAMLNode] = [:]
        var units: [String: String] = [:]
        for item in map.list("devices", required: true) ?? [] {
            guard let d = reader.mapping(item, what: "a device") else { continue }
            let deviceName = name(d, "name", required: true)
            let what = deviceName.map { "device '\($0)'" } ?? "a device"
            d.what = what
            let bus = deviceBus(d, buses: buses, what: what)
            let unit = deviceUnit(d, bus: bus, what: what)
            let profile = deviceProfile(d, library: library, what: what)
            let interval = d.interval("poll_interval", minimum: Interval(milliseconds: 100)) ?? .seconds(10)
            let timing = deviceTiming(d, profile: profile)
            let location = d.mapping("location").map(parseLocation)
            let install = d.mapping("install").map { parseInstall($0, what: what) } ?? [:]
            let report = d.mapping("report").map { parseReports($0, profile: profile) } ?? [:]
            var flood: [FloodAlertConfig] = []
            for f in d.list("flood") ?? [] {
                if let m = reader.mapping(f, what: "a flood alert of \(what)"), let c = parseFlood(m, profile: profile)
                {
                    flood.append(c)
                }
            }
            let floats = (d.list("float_switches") ?? []).compactMap {
                parseFloatSwitch($0, profile: profile, what: what)
            }
            let rain = d.mapping("rain").flatMap { parseRain($0, profile: profile, what: what) }
            let air = d.mapping("air_quality").map { parseAirQuality($0, profile: profile) }
            let writes = ConfigParser.parseWrites(d, reader: reader, profile: profile)
            d.finish()
            guard let deviceName, let bus, let unit, let profile else { continue }
            if let earlier = names[deviceName] {
                reader.error(
                    d.value("name") ?? item,
                    "duplicate device name '\(deviceName)' (first defined at line \(earlier.mark.line))")
                continue
            }
            names[deviceName] = item
            let key = "\(bus.name)#\(unit)"
            if let other = units[key], let node = d.value("unit") {
                reader.error(node, "\(what) and device '\(other)' both use unit id \(unit) on bus '\(bus.name)'")
            }
            units[key] = deviceName
            devices.append(
                DeviceConfig(
                    name: deviceName, bus: bus.name, unitId: unit, profile: profile, pollInterval: interval,
                    timing: timing,
                    location: location, install: install, report: report, flood: flood, floatSwitches: floats,
                    rain: rain,
                    airQuality: air))
            devices[devices.count - 1].writes = writes
        }
        return devices
    }

    static let rainQuantities: Set<String> = ["rain_tips", "rain", "counter"]

    func pointName(_ m: MappingReader, profile: DeviceProfile?) -> String? {
        guard let node = m.value("point", required: true), let point = reader.string(node, what: "'point' in \(m.what)")
        else { return nil }
        if let profile, profile.point(named: point) == nil {
            reader.error(
                node,
                "'\(point)' is not a point of profile '\(profile.id)' (points: \(profile.points.map(\.name).joined(separator: ", ")))"
            )
            return nil
        }
        return point
    }

    func parseReport(_ m: MappingReader) -> ReportStrategy {
        let mode =
            m.choice("mode", [("every_poll", ReportStrategy.Mode.everyPoll), ("on_change", .onChange)]) ?? .everyPoll
        let strategy = ReportStrategy(
            mode: mode, deadbandAbsolute: m.double("deadband", range: 0...Double.greatestFiniteMagnitude),
            deadbandRelative: m.double("deadband_relative", range: 0...10),
            heartbeat: m.interval("heartbeat", minimum: .seconds(1)))
        m.finish()
        return strategy
    }

    func parseFlood(_ m: MappingReader, profile: DeviceProfile?) -> FloodAlertConfig? {
        let point = pointName(m, profile: profile)
        let mounting = m.double("mounting_height")
        let s3 = m.double("siaga3", required: true)
        let s2 = m.double("siaga2", required: true)
        let s1 = m.double("siaga1", required: true)
        if let s3, let s2, let s1, !(s3 < s2 && s2 < s1) {
            reader.error(
                m.node, "flood thresholds must rise from siaga3 to siaga2 to siaga1, found \(s3), \(s2), \(s1)")
        }
        if let profile, let point, let spec = profile.point(named: point), let node = m.value("point") {
            switch spec.quantity {
            case "water_level":
                if mounting != nil, let n = m.value("mounting_height") {
                    reader.error(n, "mounting_height applies to a distance point; '\(point)' is already a water_level")
                }
            case "distance":
                if mounting == nil {
                    reader.error(
                        node,
                        "'\(point)' is a distance (sensor to water): a flood alert on it needs mounting_height, "
                            + "so level = mounting_height - distance")
                }
            default:
                reader.error(
                    node,
                    "a flood alert needs a water_level point (or a distance with mounting_height), but "
                        + "'\(point)' of profile '\(profile.id)' is \(spec.quantity)")
            }
        }
        let hysteresis = m.double("hysteresis", range: 0...1_000_000) ?? 0
        let dwell = m.interval("min_dwell") ?? .seconds(0)
        let rate = m.double("rate_of_rise", range: 0...1_000_000)
        let period = m.interval("rate_period", minimum: .minutes(1)) ?? .minutes(15)
        var intervals: [SiagaLevel: Interval] = [:]
        if let p = m.mapping("poll_intervals") {
            for level in SiagaLevel.allCases {
                if let i = p.interval("siaga\(level.rawValue)", minimum: Interval(milliseconds: 100)) {
                    intervals[level] = i
                }
            }
            p.finish()
        }
        m.finish()
        guard let point, let s3, let s2, let s1 else { return nil }
        return FloodAlertConfig(
            point: point, mountingHeight: mounting, siaga3: s3, siaga2: s2, siaga1: s1, hysteresis: hysteresis,
            minimumDwell: dwell, rateOfRise: rate, rateOfRisePeriod: period, pollIntervals: intervals)
    }

    func parseMQTT(_ m: MappingReader, identity: GatewayIdentity?) -> MQTTConfig? {
        var brokers: [MQTTConfig.Broker] = []
        let tlsMap = m.mapping("tls")
        var tls: MQTTConfig.TLS?
        if let t = tlsMap {
            let ca = t.string("ca_file", required: true)
            let cert = t.string("cert_file")
            let key = t.string("key_file")
            for (k, path) in [("ca_file", ca), ("cert_file", cert), ("key_file", key)] {
                if let path, !FileSystem.exists(path), let node = t.value(k) {
                    reader.error(node, "\(k) '\(path)' does not exist")
                }
            }
            if (cert == nil) != (key == nil) {
                reader.error(t.node, "a client certificate needs both cert_file and key_file")
            }
            t.finish()
            if let ca { tls = MQTTConfig.TLS(caFile: ca, certFile: cert, keyFile: key) }
        }
        let defaultPort = MQTTConfig.defaultPort(tls: tlsMap != nil)
        for item in m.list("brokers", required: true) ?? [] {
            if let text = item.scalar {
                // "" and ":" split into no parts at all (a crash the config fuzzer found).
                let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let port = parts.count == 2 ? Int(parts[1]) : defaultPort
                if let port, (1...65535).contains(port), let host = parts.first, !host.isEmpty {
                    brokers.append(MQTTConfig.Broker(host: parts[0], port: port))
                } else {
                    reader.error(item, "a broker must be host or host:port, found '\(text)'")
                }
            } else if let b = reader.mapping(item, what: "a broker") {
                let host = b.string("host", required: true)
                let port = b.int("port", range: 1...65535) ?? defaultPort
                b.finish()
                if let host { brokers.append(MQTTConfig.Broker(host: host, port: port)) }
            }
        }
        if brokers.isEmpty, let node = m.value("brokers") { reader.error(node, "at least one broker is needed") }
        var clientId = identity.map { "pantau-\($0.site)-\($0.id)" } ?? "pantau"
        if let node = m.value("client_id"), let id = reader.string(node, what: "'client_id' in \(m.what)") {
            if id.utf8.count > IdentifierLimits.clientId {
                reader.error(
                    node,
                    "client_id is \(id.utf8.count) bytes long, more than the \(IdentifierLimits.clientId) allowed")
            } else if id.unicodeScalars.contains(where: IdentifierLimits.isControl) {
                reader.error(node, "client_id may not contain control characters")
            } else {
                clientId = id
            }
        }
        var username: String?
        if let node = m.value("username"), let name = reader.string(node, what: "'username' in \(m.what)") {
            if name.utf8.count > IdentifierLimits.username
                || name.unicodeScalars.contains(where: IdentifierLimits.isControl)
            {
                reader.error(
                    node,
                    "username may not be longer than \(IdentifierLimits.username) bytes or contain control characters")
            } else {
                username = name
            }
        }
        var password: String?
        if let node = m.value("password_file"), let path = reader.string(node, what: "'password_file' in \(m.what)") {
            if let mode = FileSystem.mode(path), let problem = MQTTConfig.passwordFileProblem(path: path, mode: mode) {
                reader.error(node, problem)
            }
            do {
                var text = try FileSystem.readText(path)
                while text.last == "\n" || text.last == "\r" { text.removeLast() }
                password = text
            } catch {
                reader.error(node, "cannot read password_file '\(path)': \(error.reason)")
            }
        }
        if let node = m.value("password_env"), let name = reader.string(node, what: "'password_env' in \(m.what)") {
            if password != nil {
                reader.error(node, "give either password_file or password_env, not both")
            } else if let value = environment(name) {
                password = value
            } else {
                reader.error(node, "password_env names '\(name)', which is not set in the environment")
            }
        }
        if m.has("password"), let node = m.value("password") {
            reader.error(node, "passwords are not written in the configuration; use password_file or password_env")
        }
        var prefix = "pantau"
        if let node = m.value("topic_prefix"), let p = reader.string(node, what: "'topic_prefix' in \(m.what)") {
            if p.isEmpty || p.contains("+") || p.contains("#") || p.hasPrefix("/") || p.hasSuffix("/")
                || p.contains("//")
            {
                reader.error(
                    node,
                    "topic_prefix may not be empty, contain + or #, start or end with /, or have an empty level (//)")
            } else if p.unicodeScalars.contains(where: IdentifierLimits.isControl) {
                reader.error(node, "topic_prefix may not contain control characters (NUL, line breaks, ...)")
            } else if p.utf8.count > IdentifierLimits.topicPrefix {
                reader.error(
                    node,
                    "topic_prefix is \(p.utf8.count) bytes long, more than the \(IdentifierLimits.topicPrefix) allowed")
            } else {
                prefix = p
            }
        }
        let keepalive = m.int("keepalive", range: 5...3600) ?? 30
        let inflight = m.int("inflight", range: 1...65535) ?? 64
        let reconnectMin = m.interval("reconnect_min", minimum: Interval(milliseconds: 10))
        let reconnectMax = m.interval("reconnect_max", minimum: Interval(milliseconds: 100))
        let liveWindow = m.interval("live_window", minimum: Interval(milliseconds: 1000))
        var format = MQTTConfig.TelemetryFormat.senml
        if let node = m.value("format"), let f = reader.string(node, what: "'format' in \(m.what)") {
            if let known = MQTTConfig.TelemetryFormat(rawValue: f) {
                format = known
            } else {
                let names = MQTTConfig.TelemetryFormat.allCases.map(\.rawValue).joined(separator: ", ")
                reader.error(node, "unknown mqtt format '\(f)'; use one of \(names)")
            }
        }
        m.finish()
        guard !brokers.isEmpty else { return nil }
        var config = MQTTConfig(
            brokers: brokers, clientId: clientId, username: username, password: password, tls: tls, topicPrefix: prefix,
            keepaliveSeconds: keepalive, inflightWindow: inflight,
            reconnectMinSeconds: Double(reconnectMin?.milliseconds ?? 500) / 1000,
            reconnectMaxSeconds: Double(reconnectMax?.milliseconds ?? 5_000) / 1000)
        if let liveWindow { config.liveWindow = liveWindow }
        config.format = format
        return config
    }

    func parseJournal(_ m: MappingReader, baseDir: String) -> JournalConfig {
        var j = JournalConfig()
        if let p = m.string("path") { j.path = FileSystem.resolve(p, relativeTo: baseDir) }
        let folder = FileSystem.directoryOf(j.path)
        // The shipped systemd unit creates /var/lib/pantau (StateDirectory=pantau) when the service starts.
        if let problem = FileSystem.folderProblem(folder),
            !(folder == "/var/lib/pantau" && problem == "does not exist")
        {
            reader.error(m.value("path") ?? m.node, "the journal folder '\(folder)' \(problem)")
        }
        if let d = m.choice("durability", [("full", JournalConfig.Durability.full), ("normal", .normal)]) {
            j.durability = d
        }
        if let b = m.byteSize("max_bytes") {
            if b < 1 << 20, let node = m.value("max_bytes") {
                reader.error(node, "journal max_bytes must be at least 1MiB")
            } else {
                j.maxBytes = b
            }
        }
        if let a = m.interval("max_age", minimum: .minutes(1)) { j.maxAge = a }
        if let c = m.interval("commit_interval", minimum: Interval(milliseconds: 1)) {
            if c > .seconds(10), let node = m.value("commit_interval") {
                reader.error(node, "journal commit_interval must be 10s or less")
            } else {
                j.commitInterval = c
            }
        }
        if let s = m.double("backlog_share", range: 0.05...1) { j.backlogShare = s }
        m.finish()
        return j
    }

    func parseAggregation(_ m: MappingReader) -> AggregationConfig {
        var a = AggregationConfig()
        if let list = m.list("windows") {
            a.windows = list.compactMap { reader.interval($0, what: "a window length", minimum: .seconds(10)) }
        }
        if let c = m.double("min_coverage", range: 0...1) { a.minimumCoverage = c }
        if let r = m.mapping("report") { a.defaultReport = parseReport(r) }
        m.finish()
        return a
    }
}
