import ArgumentParser
import PantauCore
import PantauGateway
import PantauModbus
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Find the Modbus units on a serial port (across baud rates and parities) or behind a TCP gateway.",
        discussion: """
            A unit answers when a read of holding register 0 (--probe input: input register 0) returns data or a \
            Modbus exception: an exception proves a device is there. Units that answer are matched against the \
            identification registers of the profiles to guess the model. Progress goes to standard error (a bar \
            with the time left on a terminal, one line per find otherwise); Ctrl-C stops and prints what was found. \
            Exit 0 when something answered, 69 when nothing did, 130 when interrupted.
            """)

    enum Help: EndpointHelp {
        static let tcp = "Scan unit ids behind a Modbus TCP server, host:port (port 502 when left out)."
        static let rtuOverTcp =
            "Scan unit ids behind a DTU or serial device server forwarding RTU frames over TCP, host:port."
    }

    @OptionGroup var endpoint: LinkEndpoint<Help>

    @Option(help: "Find SDI-12 sensors (?!, a! at every address, aI!) on this serial port or USB SDI-12 adapter.")
    var sdi12: String?

    @Option(help: "Baud rates to try, comma separated.")
    var baud: String = "9600"

    @Option(help: "Parities to try: none, even, odd, a comma separated list, or all.")
    var parity: String = "none"

    @Option(help: "Data bits (serial).")
    var dataBits: Int = 8

    @Option(help: "Stop bits (serial).")
    var stopBits: Int = 1

    @Option(help: "Unit ids to probe, e.g. 1-247, 5 or 1,3,10-12.")
    var units: String = "1-247"

    @Option(help: "How long to wait for each unit, in milliseconds.")
    var timeoutMs: Int = 100

    @Option(help: "The register probed: holding or input (address 0).")
    var probe: RegisterTable = .holding

    @Option(name: .customLong("profile-dir"), help: "An extra profile folder, searched first (repeatable).")
    var profileDirs: [String] = []

    @Flag(help: "Print JSON.")
    var json = false

    struct Report: Encodable {
        var link: String
        var probed: Int
        var total: Int
        var interrupted: Bool
        var found: [Hit]
        struct Hit: Encodable {
            var unit: Int
            var baud: Int?
            var parity: String?
            var responseMs: Double
            var exception: String?
            var models: [String]
        }
    }

    func validate() throws {
        if endpoint.count + (sdi12 == nil ? 0 : 1) != 1 {
            throw ValidationError(
                "give one of --device /dev/ttyUSB0, --tcp host:port, --rtu-over-tcp host:port or --sdi12 TTY")
        }
        if !(1...60_000).contains(timeoutMs) { throw ValidationError("--timeout-ms must be within 1...60000") }
        if probe.isBitTable { throw ValidationError("--probe must be holding or input") }
    }

    func run() throws {
        if let sdi12 { return try scanSDI12(sdi12) }
        let unitIds: [Int]
        let settings: [SerialSettings?]
        do {
            // Over TCP, gateways often use 0 or 255 for the device itself.
            unitIds = try ScanArguments.units(units, allowed: endpoint.tcp == nil ? 1...247 : 0...255)
            let bauds = try ScanArguments.bauds(baud)
            let parities = try ScanArguments.parities(parity)
            settings =
                endpoint.device == nil
                ? [nil]
                : bauds.flatMap { b in
                    parities.map { p in SerialSettings(baud: b, parity: p, dataBits: dataBits, stopBits: stopBits) }
                }
        } catch {
            throw usageFailure(error)
        }
        // Exactly one of the endpoint's options is given (`validate`): one link per line setting.
        let links = settings.compactMap { endpoint.link(serial: $0 ?? SerialSettings()) }
        let place = endpoint.device ?? links[0].description
        let profiles = try profileDirectories(profileDirs).library().profiles.values
        let scanner = BusScanner(
            units: unitIds, settings: settings, probe: ReadRequest(table: probe, address: 0, count: 1),
            profiles: Array(profiles))
        let terminal = isatty(STDERR_FILENO) == 1
        let erase = terminal ? "\r\u{1B}[K" : ""
        let clock = SystemClock()
        let started = clock.monotonicNanos()
        var lastDraw: UInt64 = 0
        Interruption.install()
        printError(
            "scanning \(place): \(DiagnosticsFormat.counted(unitIds.count, "unit id")) x "
                + "\(DiagnosticsFormat.counted(settings.count, "line setting")), \(timeoutMs) ms each")
        let outcome = scanner.run(
            open: { serial throws(ModbusError) in
                try links[settings.firstIndex(of: serial) ?? 0].open(responseTimeoutMs: timeoutMs)
            },
            shouldStop: { Interruption.requested },
            report: { event in
                switch event {
                case .found(let hit):
                    // Printed over the bar, which the next progress event draws again below it.
                    printError(erase + Self.describe(hit))
                    lastDraw = 0
                case .openFailed(let serial, let error):
                    let what = serial.map { "\(endpoint.device ?? "") at \($0.baud) \($0.frameNotation)" } ?? place
                    printError(erase + "cannot open \(what): \(error.message)")
                    lastDraw = 0
                case .progress(let done, let total, let found):
                    guard terminal else { return }
                    let now = clock.monotonicNanos()
                    // Redrawing more than ten times a second only makes the terminal flicker.
                    guard done == total || now - lastDraw >= 100_000_000 else { return }
                    lastDraw = now
                    let line = ScanProgress.line(done: done, total: total, found: found, elapsedNanos: now - started)
                    writeStandardError(erase + line)
                }
            })
        if terminal { printError("") }
        if outcome.interrupted {
            printError("interrupted after \(outcome.probed) of \(outcome.total) probes")
        }
        show(outcome, place: place)
        if outcome.interrupted { throw ArgumentParser.ExitCode(130) }
        if outcome.hits.isEmpty {
            if outcome.openFailures.count == settings.count, let first = outcome.openFailures.first {
                throw modbusFailure(first)
            }
            throw fail(
                "no unit answered on \(place) (units \(units))",
                hint: "check wiring (A/B), power and termination; try more --baud and --parity values "
                    + "or a longer --timeout-ms", code: .unavailable)
        }
    }

    static func describe(_ hit: ScanHit) -> String {
        var line = "found unit \(hit.unit)"
        if let serial = hit.serial { line += " at \(serial.baud) \(serial.frameNotation)" }
        line += " in \(DiagnosticsFormat.milliseconds(hit.responseMs))"
        if let exception = hit.exception { line += " (answered with exception \(exception.rawValue))" }
        if !hit.models.isEmpty { line += ": model \(hit.models.joined(separator: " or "))" }
        return line
    }

    func show(_ outcome: ScanOutcome, place: String) {
        if json {
            printJSON(
                Report(
                    link: place, probed: outcome.probed, total: outcome.total, interrupted: outcome.interrupted,
                    found: outcome.hits.map {
                        .init(
                            unit: $0.unit, baud: $0.serial?.baud, parity: $0.serial?.parity.rawValue,
                            responseMs: $0.responseMs, exception: $0.exception?.rawValue, models: $0.models)
                    }))
            return
        }
        print("UNIT  BAUD    PARITY  RESPONSE  MODEL")
        for hit in outcome.hits {
            let model =
                hit.models.isEmpty
                ? (hit.exception.map { "? (exception \($0.rawValue))" } ?? "?")
                : hit.models.joined(separator: " or ")
            print(
                String(hit.unit).padding(4) + "  " + (hit.serial.map { String($0.baud) } ?? "tcp").padding(6) + "  "
                    + (hit.serial?.parity.rawValue ?? "-").padding(6) + "  "
                    + DiagnosticsFormat.milliseconds(hit.responseMs).padding(8) + "  " + model)
        }
        print("\(DiagnosticsFormat.counted(outcome.hits.count, "unit")) found")
    }
}

/// Writes to standard error without a line break, for a progress line redrawn in place.
func writeStandardError(_ text: String) {
    _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}

/// The folders given with `--profile-dir`, as the option group of the `profiles` commands.
func profileDirectories(_ extra: [String]) throws -> ProfileDirectoryOptions {
    try ProfileDirectoryOptions.parse(extra.flatMap { ["--dir", $0] })
}
