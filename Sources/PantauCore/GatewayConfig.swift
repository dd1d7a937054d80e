/// The whole validated configuration of one gateway (`gateway.yaml`). Parsed once; nothing downstream re-checks it.
public struct GatewayConfig: Sendable, Hashable {
    public var identity: GatewayIdentity
    public var buses: [BusConfig]
    public var devices: [DeviceConfig]
    public var mqtt: MQTTConfig
    /// Sparkplug B identity; defaults to the site and the gateway id.
    public var sparkplug: SparkplugConfig? = nil
    public var journal: JournalConfig
    public var aggregation: AggregationConfig
    /// Folders searched for profiles, in order; a profile id found earlier wins.
    public var profileDirectories: [String]
    public var statusSocket: String
    /// The file this configuration came from.
    public var file: String
    /// `time.unsynced`: what happens to data acquired while the clock is unsynchronised (issue 14).
    public var unsyncedTime: UnsyncedTimePolicy = .mark
    /// `commands:`: remote commands (issue 16); disabled unless the section enables them.
    public var commands = CommandsConfig.disabled

    public init(
        identity: GatewayIdentity, buses: [BusConfig], devices: [DeviceConfig], mqtt: MQTTConfig,
        journal: JournalConfig = JournalConfig(), aggregation: AggregationConfig = AggregationConfig(),
        profileDirectories: [String] = [], statusSocket: String = "/run/pantau/status.sock", file: String = ""
    ) {
        self.identity = identity
        self.buses = buses
        self.devices = devices
        self.mqtt = mqtt
        self.journal = journal
        self.aggregation = aggregation
        self.profileDirectories = profileDirectories
        self.statusSocket = statusSocket
        self.file = file
    }
}

public struct GatewayIdentity: Sendable, Hashable {
    /// The field site, e.g. `cisadane-pintu-air-10`.
    public var site: String
    /// This gateway, unique within the site, e.g. `gw-01`.
    public var id: String

    public init(site: String, id: String) {
        self.site = site
        self.id = id
    }
}

/// One physical bus. Exactly one thread owns it.
public struct BusConfig: Sendable, Hashable {
    public enum Transport: Sendable, Hashable {
        case rtu(RTUSettings)
        case tcp(host: String, port: Int)
        /// RTU frames over a TCP socket (a DTU or serial device server in transparent mode).
        case rtuOverTCP(RTUOverTCPSettings)
        /// One framed UART sensor on a serial port (no Modbus).
        case uart(UARTSettings)
        /// SDI-12 sensors on one serial port or USB SDI-12 adapter.
        case sdi12(SDI12Settings)
    }

    public var name: String
    public var transport: Transport

    public init(name: String, transport: Transport) {
        self.name = name
        self.transport = transport
    }
}

public struct RTUSettings: Sendable, Hashable {
    public var device: String
    public var serial: SerialSettings
    /// Switch the port to RS-485 mode with TIOCSRS485 (off for USB adapters that switch direction themselves).
    public var rs485: Bool
    /// Silence kept between frames; nil means the Modbus t3.5 for the line settings.
    public var interFrameDelayMicros: Int?

    public init(device: String, serial: SerialSettings, rs485: Bool = false, interFrameDelayMicros: Int? = nil) {
        self.device = device
        self.serial = serial
        self.rs485 = rs485
        self.interFrameDelayMicros = interFrameDelayMicros
    }

    public var effectiveInterFrameMicros: Int { interFrameDelayMicros ?? serial.interFrameSilenceMicros }
}

/// One device on a bus, with its profile resolved.
public struct DeviceConfig: Sendable, Hashable {
    public var name: String
    public var bus: String
    public var unitId: Int
    public var profile: DeviceProfile
    public var pollInterval: Interval
    /// Overrides of the profile's timing for this device.
    public var timing: ProfileTiming
    public var location: DeviceLocation?
    /// Free install parameters (e.g. `mounting_height_m`), by name.
    public var install: [String: Double]
    /// Per-point report strategies; points not listed use `AggregationConfig.defaultReport`.
    public var report: [String: ReportStrategy]
    public var flood: [FloodAlertConfig]
    public var floatSwitches: [FloatSwitchConfig]
    public var rain: RainConfig?
    public var airQuality: AirQualityConfig?
    /// Remote `write` commands may set its writable points (`writes: allow`).
    public var writes = false

    public init(
        name: String, bus: String, unitId: Int, profile: DeviceProfile, pollInterval: Interval,
        timing: ProfileTiming? = nil, location: DeviceLocation? = nil, install: [String: Double] = [:],
        report: [String: ReportStrategy] = [:], flood: [FloodAlertConfig] = [],
        floatSwitches: [FloatSwitchConfig] = [], rain: RainConfig? = nil,
        airQuality: AirQualityConfig? = nil
    ) {
        self.name = name
        self.bus = bus
        self.unitId = unitId
        self.profile = profile
        self.pollInterval = pollInterval
        self.timing = timing ?? profile.timing
        self.location = location
        self.install = install
        self.report = report
        self.flood = flood
        self.floatSwitches = floatSwitches
        self.rain = rain
        self.airQuality = airQuality
    }
}

public struct DeviceLocation: Sendable, Hashable {
    public var latitude: Double?
    public var longitude: Double?
    public var description: String?

    public init(latitude: Double? = nil, longitude: Double? = nil, description: String? = nil) {
        self.latitude = latitude
        self.longitude = longitude
        self.description = description
    }
}

/// Sparkplug B edge node identity (`sparkplug:`), used with `mqtt.format: sparkplug`.
public struct SparkplugConfig: Sendable, Hashable {
    /// `group_id`: the Sparkplug group (default: the site).
    public var groupId: String
    /// `edge_node_id`: the edge node id (default: the gateway id).
    public var edgeNodeId: String
    /// `primary_host_id`: births wait for this host application's STATE to say online (nil: no waiting).
    public var primaryHostId: String?

    public init(groupId: String, edgeNodeId: String, primaryHostId: String? = nil) {
        self.groupId = groupId
        self.edgeNodeId = edgeNodeId
        self.primaryHostId = primaryHostId
    }
}

public struct MQTTConfig: Sendable, Hashable {
    /// The broker port when none is given: 1883, or 8883 over TLS.
    public static func defaultPort(tls: Bool) -> Int { tls ? 8883 : 1883 }

    /// What is wrong with `mode` (a file's permission bits) for a file holding the MQTT password, or nil.
    /// Group-readable is fine (the pantau group); readable by every user of the board is not.
    public static func passwordFileProblem(path: String, mode: UInt32) -> String? {
        guard mode & 0o004 != 0 else { return nil }
        return "password_file '\(path)' is readable by everyone (mode \(String(mode, radix: 8))); "
            + "run chmod o-rwx '\(path)' (0600 or 0640)"
    }

    public struct Broker: Sendable, Hashable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public struct TLS: Sendable, Hashable {
        public var caFile: String
        public var certFile: String?
        public var keyFile: String?
        public init(caFile: String, certFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
        }
    }

    /// Tried in order; on failure the next one (failover).
    public var brokers: [Broker]
    public var clientId: String
    public var username: String?
    /// Resolved at load time from `password_file` or `password_env`; never written in the config itself.
    public var password: String?
    public var tls: TLS?
    public var topicPrefix: String
    public var keepaliveSeconds: Int
    /// Messages in flight waiting for PUBACK.
    public var inflightWindow: Int
    /// Seconds of the first and the longest reconnect wait (jittered exponential backoff between them). The longest
    /// also bounds how long after a broker comes back the gateway reconnects (5 s by default).
    public var reconnectMinSeconds: Double
    public var reconnectMaxSeconds: Double
    /// Data acquired longer ago than this when it is sent is backlog: published with `"hist":true`.
    public var liveWindow: Interval = .seconds(60)
    /// The telemetry form (`mqtt.format`).
    public var format: TelemetryFormat = .senml

    /// How telemetry is written on the wire.
    public enum TelemetryFormat: String, Sendable, Hashable, CaseIterable {
        /// SenML with unit and quality in every record (docs/mqtt.md).
        case senml
        /// SenML without what the contract fixes: no base name (the topic names the device), no unit (the profile
        /// fixes it), no quality when good.
        case senmlCompact = "senml-compact"
        /// Sparkplug B 3.0 edge node (docs/sparkplug.md).
        case sparkplug
    }

    public init(
        brokers: [Broker], clientId: String, username: String? = nil, password: String? = nil, tls: TLS? = nil,
        topicPrefix: String = "pantau", keepaliveSeconds: Int = 30, inflightWindow: Int = 64,
        reconnectMinSeconds: Double = 0.5, reconnectMaxSeconds: Double = 5
    ) {
        self.brokers = brokers
        self.clientId = clientId
        self.username = username
        self.password = password
        self.tls = tls
        self.topicPrefix = topicPrefix
        self.keepaliveSeconds = keepaliveSeconds
        self.inflightWindow = inflightWindow
        self.reconnectMinSeconds = reconnectMinSeconds
        self.reconnectMaxSeconds = reconnectMaxSeconds
    }
}

public struct JournalConfig: Sendable, Hashable {
    public enum Durability: String, Sendable, Hashable {
        /// fsync every group commit: nothing committed is lost on power failure.
        case full
        /// No fsync per group: a power cut may lose the last groups, a process crash loses nothing committed.
        case normal
    }

    public var path: String
    public var durability: Durability
    public var maxBytes: Int64
    public var maxAge: Interval
    /// The longest an append waits for its group commit.
    public var commitInterval: Interval
    /// Share of publish slots given to the backlog while live data is flowing (0 to 1).
    public var backlogShare: Double

    public init(
        path: String = "/var/lib/pantau/journal.sqlite", durability: Durability = .full,
        maxBytes: Int64 = 256 * 1024 * 1024, maxAge: Interval = Interval(milliseconds: 7 * 86_400_000),
        commitInterval: Interval = Interval(milliseconds: 200), backlogShare: Double = 0.5
    ) {
        self.path = path
        self.durability = durability
        self.maxBytes = maxBytes
        self.maxAge = maxAge
        self.commitInterval = commitInterval
        self.backlogShare = backlogShare
    }
}

/// When a point's raw telemetry is published.
public struct ReportStrategy: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable {
        case everyPoll = "every_poll"
        case onChange = "on_change"
    }

    public var mode: Mode
    /// On change: publish when |new - last published| exceeds this.
    public var deadbandAbsolute: Double?
    /// On change: publish when |new - last| / |last| exceeds this fraction.
    public var deadbandRelative: Double?
    /// Publish at least this often, even without change.
    public var heartbeat: Interval?

    public init(
        mode: Mode = .everyPoll, deadbandAbsolute: Double? = nil, deadbandRelative: Double? = nil,
        heartbeat: Interval? = nil
    ) {
        self.mode = mode
        self.deadbandAbsolute = deadbandAbsolute
        self.deadbandRelative = deadbandRelative
        self.heartbeat = heartbeat
    }
}

public struct AggregationConfig: Sendable, Hashable {
    /// Tumbling window lengths, aligned to wall-clock boundaries.
    public var windows: [Interval]
    public var defaultReport: ReportStrategy
    /// Below this share of expected samples an index is "insufficient data".
    public var minimumCoverage: Double

    public init(
        windows: [Interval] = [.minutes(1), .minutes(15), .minutes(60)],
        defaultReport: ReportStrategy = ReportStrategy(), minimumCoverage: Double = 0.75
    ) {
        self.windows = windows
        self.defaultReport = defaultReport
        self.minimumCoverage = minimumCoverage
    }
}

/// Flood alert levels, in BPBD convention: Siaga 4 is normal, Siaga 1 (Awas) the highest.
public enum SiagaLevel: Int, Sendable, Hashable, CaseIterable, Comparable {
    case siaga4 = 4
    case siaga3 = 3
    case siaga2 = 2
    case siaga1 = 1

    /// Higher danger compares greater.
    public static func < (a: SiagaLevel, b: SiagaLevel) -> Bool { a.rawValue > b.rawValue }
}

/// Flood alerting for one water-level point of a device.
public struct FloodAlertConfig: Sendable, Hashable {
    /// The point giving the level, or (with `mountingHeight`) the distance from sensor to water.
    public var point: String
    /// When set, level = mountingHeight - distance, in the point's unit.
    public var mountingHeight: Double?
    /// Thresholds in the point's unit (after the distance conversion): entering Siaga 3, 2 and 1.
    public var siaga3: Double
    public var siaga2: Double
    public var siaga1: Double
    /// A level must fall this far below a threshold before the alert steps down.
    public var hysteresis: Double
    /// A new level must hold this long before it is declared.
    public var minimumDwell: Interval
    /// Rise that raises a rate-of-rise alert within `rateOfRisePeriod`, in the point's unit.
    public var rateOfRise: Double?
    public var rateOfRisePeriod: Interval
    /// Poll interval at each level; levels not listed keep the device interval.
    public var pollIntervals: [SiagaLevel: Interval]

    public init(
        point: String, mountingHeight: Double? = nil, siaga3: Double, siaga2: Double, siaga1: Double,
        hysteresis: Double = 0, minimumDwell: Interval = .seconds(0), rateOfRise: Double? = nil,
        rateOfRisePeriod: Interval = .minutes(15), pollIntervals: [SiagaLevel: Interval] = [:]
    ) {
        self.point = point
        self.mountingHeight = mountingHeight
        self.siaga3 = siaga3
        self.siaga2 = siaga2
        self.siaga1 = siaga1
        self.hysteresis = hysteresis
        self.minimumDwell = minimumDwell
        self.rateOfRise = rateOfRise
        self.rateOfRisePeriod = rateOfRisePeriod
        self.pollIntervals = pollIntervals
    }
}

/// A float switch (a boolean point that is on when water reaches it), debounced before it raises an alert.
public struct FloatSwitchConfig: Sendable, Hashable {
    public var point: String
    /// Consecutive equal good readings needed before a new state is declared.
    public var samples: Int
    /// And how long the new state must have held.
    public var dwell: Interval

    public init(point: String, samples: Int = 3, dwell: Interval = .seconds(0)) {
        self.point = point
        self.samples = samples
        self.dwell = dwell
    }
}

/// A tipping-bucket rain gauge point.
public struct RainConfig: Sendable, Hashable {
    /// The counter point (tips or tenths of mm, as the profile decodes it to mm).
    public var point: String
    /// Millimetres of rain per counter step after profile scaling (1 when the profile already gives mm).
    public var mmPerCount: Double
    /// The counter's modulus, for wrap-around (65536 for a u16 register).
    public var counterModulus: Double

    public init(point: String, mmPerCount: Double = 1, counterModulus: Double = 65536) {
        self.point = point
        self.mmPerCount = mmPerCount
        self.counterModulus = counterModulus
    }
}

/// Which air-quality indices to compute from a device's pollutant points.
public struct AirQualityConfig: Sendable, Hashable {
    public enum Index: String, Sendable, Hashable { case ispu, aqi }
    public var indices: [Index]
    /// Averaging period per ISPU parameter (quantity name), overriding the regulation's 24 h.
    public var averaging: [String: Interval]

    public init(indices: [Index] = [.ispu], averaging: [String: Interval] = [:]) {
        self.indices = indices
        self.averaging = averaging
    }
}
