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
