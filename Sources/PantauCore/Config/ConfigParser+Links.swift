import PantauYAML

extension ConfigParser {
    /// The keys of a `type: rtu_over_tcp` bus: `host`, `port` (default 502) and, when the serial side's line
    /// settings are known, `baud`, `parity`, `data_bits`, `stop_bits` (they give the t3.5 silence kept between
    /// requests); `inter_frame_delay_us` overrides that silence.
    static func rtuOverTCP(_ b: MappingReader, reader: NodeReader, what: String) -> BusConfig.Transport? {
        let host = b.string("host", required: true)
        let port = b.int("port", range: 1...65535) ?? 502
        var serial: SerialSettings?
        if b.has("baud") || b.has("parity") || b.has("data_bits") || b.has("stop_bits") {
            var s = SerialSettings()
            if let baud = b.int("baud") {
                if ProfileParser.supportedBauds.contains(baud) {
                    s.baud = baud
                } else if let n = b.value("baud") {
                    let known = ProfileParser.supportedBauds.map(String.init).joined(separator: ", ")
                    reader.error(n, "baud \(baud) of \(what) is not a standard rate (\(known))")
                }
            }
            let parities: [(String, SerialSettings.Parity)] = [("none", .none), ("even", .even), ("odd", .odd)]
            if let p = b.choice("parity", parities) { s.parity = p }
            if let d = b.int("data_bits", range: 7...8) { s.dataBits = d }
            if let stop = b.int("stop_bits", range: 1...2) { s.stopBits = stop }
            serial = s
        }
        let delay = b.int("inter_frame_delay_us", range: 0...1_000_000)
        guard let host else { return nil }
        if host.isEmpty, let node = b.value("host") {
            reader.error(node, "'host' of \(what) is empty")
            return nil
        }
        return .rtuOverTCP(RTUOverTCPSettings(host: host, port: port, serial: serial, interFrameDelayMicros: delay))
    }
}
