import PantauCore

/// Fault injection for the end-to-end tests, set through `PANTAU_FAILPOINT`; never set in the field.
///
/// `wedge-bus:NAME:SECONDS` makes bus NAME's thread hang inside its poll hand-over SECONDS after start, the way a
/// driver stuck in a blocking call would, so the test can see the systemd watchdog stop.
enum Failpoint {
    static func wedgeBus(_ bus: String) -> UInt64? {
        guard let spec = FileSystem.environment("PANTAU_FAILPOINT") else { return nil }
        let parts = spec.split(separator: ":").map(String.init)
        guard parts.count == 3, parts[0] == "wedge-bus", parts[1] == bus, let seconds = Double(parts[2]) else { return nil }
        return UInt64(seconds * 1_000_000_000)
    }

    static func hang() -> Never {
        while true { sleepMillis(60_000) }
    }
}
