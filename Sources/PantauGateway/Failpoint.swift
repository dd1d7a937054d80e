import PantauCore
import PantauPlatform
import Synchronization

/// Fault injection for the end-to-end tests, set through `PANTAU_FAILPOINT`; never set in the field.
///
/// `wedge-bus:NAME:SECONDS` makes bus NAME's thread hang inside its poll hand-over SECONDS after start, the way a
/// driver stuck in a blocking call would, so the test can see the systemd watchdog stop.
/// `wedge-bus:NAME:SECONDS:FOR` hangs it once, for FOR seconds, then lets it go on (a stall that ends).
enum Failpoint {
    static func wedgeBus(_ bus: String) -> UInt64? {
        guard let spec = FileSystem.environment("PANTAU_FAILPOINT") else { return nil }
        let parts = spec.split(separator: ":").map(String.init)
        guard parts.count == 3 || parts.count == 4, parts[0] == "wedge-bus", parts[1] == bus,
            let seconds = Double(parts[2])
        else { return nil }
        return UInt64(seconds * 1_000_000_000)
    }

    /// FOR of `wedge-bus:NAME:SECONDS:FOR` in milliseconds; nil: hang for ever.
    static var wedgeMillis: Int? {
        guard let spec = FileSystem.environment("PANTAU_FAILPOINT") else { return nil }
        let parts = spec.split(separator: ":").map(String.init)
        guard parts.count == 4, let seconds = Double(parts[3]) else { return nil }
        return Int(seconds * 1000)
    }

    private static let hungOnce = Atomic<Bool>(false)

    /// Hangs the calling thread: for ever, or once for FOR seconds (later calls return at once).
    static func hang() {
        guard let millis = wedgeMillis else {
            while true { sleepMillis(60_000) }
        }
        if hungOnce.exchange(true, ordering: .relaxed) { return }
        sleepMillis(millis)
    }
}
