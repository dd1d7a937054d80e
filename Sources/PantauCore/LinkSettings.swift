/// A Modbus RTU line reached through a serial device server or 4G DTU in transparent mode: the TCP stream carries
/// plain RTU frames (unit id, PDU, CRC-16), no MBAP header.
public struct RTUOverTCPSettings: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// The line settings of the serial side, when known: they give the t3.5 silence kept between requests.
    public var serial: SerialSettings?
    /// Silence kept between frames; nil means t3.5 of `serial`, else `defaultGapMicros`.
    public var interFrameDelayMicros: Int?

    /// The gap kept between requests when the far side's baud is unknown: t3.5 above 19200 baud.
    public static let defaultGapMicros = 1750

    public init(host: String, port: Int, serial: SerialSettings? = nil, interFrameDelayMicros: Int? = nil) {
        self.host = host
        self.port = port
        self.serial = serial
        self.interFrameDelayMicros = interFrameDelayMicros
    }

    public var effectiveInterFrameMicros: Int {
        interFrameDelayMicros ?? serial?.interFrameSilenceMicros ?? Self.defaultGapMicros
    }
}

/// A serial port with one non-Modbus sensor on it: a framed UART sensor (PMS5003, SDS011), whose profile
/// describes the frame.
public struct UARTSettings: Sendable, Hashable {
    /// Line settings a bus entry gives explicitly; the others come from the sensor's profile.
    public struct LineOverrides: Sendable, Hashable {
        public var baud: Int?
        public var parity: SerialSettings.Parity?
        public var dataBits: Int?
        public var stopBits: Int?

        public init(baud: Int? = nil, parity: SerialSettings.Parity? = nil, dataBits: Int? = nil, stopBits: Int? = nil)
        {
            self.baud = baud
            self.parity = parity
            self.dataBits = dataBits
            self.stopBits = stopBits
        }

        /// `profile`'s settings with these overrides applied.
        public func applied(to profile: SerialSettings) -> SerialSettings {
            SerialSettings(
                baud: baud ?? profile.baud, parity: parity ?? profile.parity, dataBits: dataBits ?? profile.dataBits,
                stopBits: stopBits ?? profile.stopBits)
        }
    }

    public var device: String
    public var overrides: LineOverrides
    /// The line settings in effect (the profile's with the overrides; attached when the configuration is parsed).
    public var serial: SerialSettings
    /// The frame of the one sensor on the port, from its profile (attached when the configuration is parsed).
    public var frame: FrameSpec?

    public init(
        device: String, overrides: LineOverrides = LineOverrides(), serial: SerialSettings = SerialSettings(),
        frame: FrameSpec? = nil
    ) {
        self.device = device
        self.overrides = overrides
        self.serial = serial
        self.frame = frame
    }
}
