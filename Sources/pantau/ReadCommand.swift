import ArgumentParser
import PantauCore
import PantauGateway
import PantauModbus

#if canImport(Glibc)
    import Glibc
#endif

struct ReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Poll a device once with its profile and show every point: value, unit, quality, raw registers.",
        discussion: """
            Either name the profile, the link and the unit (pantau read --profile ID --tcp HOST:PORT --unit N), or \
            take them from the configuration (pantau read --config FILE --name DEVICE). --watch redraws the table \
            until Ctrl-C.
            """)

    @Option(help: "Profile id (see `pantau profiles list`).")
    var profile: String?

    @OptionGroup var link: LinkOptions

    @Option(help: "Unit (slave) id (default: the profile's factory id).")
    var unit: Int?

    @Option(name: [.short, .long], help: "Take bus, unit and profile of --name from this configuration file.")
    var config: String?

    @Option(help: "Device name in the configuration.")
    var name: String?

    @Option(name: .customLong("profile-dir"), help: "An extra profile folder, searched first (repeatable).")
    var profileDirs: [String] = []

    @Flag(help: "Poll again every --interval and redraw the table in place, until Ctrl-C.")
    var watch = false

    @Option(
        help: "Time between polls with --watch, e.g. 1s or 500ms (default 1s).",
        transform: { text in
            guard let every = Interval(parsing: text), every.milliseconds > 0 else {
                throw ValidationError("--interval '\(text)' is not a duration like 1s or 500ms")
            }
            return every
        })
    var interval: Interval = .seconds(1)

    @Flag(help: "Print JSON (with --watch, one JSON document per poll).")
    var json = false

    struct Report: Encodable {
        var device: String
        var profile: String
        var link: String
        var unit: Int
        var acquiredAt: Int64
        var requests: [Request]
        var points: [Point]
        struct Request: Encodable {
            var function: Int
            var table: String
            var address: Int
            var count: Int
            var responseMs: Double
            var error: String?
        }
        struct Point: Encodable {
            var name: String
            var value: CommandValue?
            var unit: String
            var quality: String
            var raw: [String]
            var request: Int?
            var error: String?
        }
    }

    /// What to poll, resolved from the options or the configuration.
    struct Target {
        var device: String
        var profile: DeviceProfile
        var link: ModbusLink
        var unit: Int
        var timing: ProfileTiming
    }

    func validate() throws {
        if config != nil || name != nil {
            if config == nil || name == nil { throw ValidationError("--config and --name go together") }
            if profile != nil || link.given || unit != nil {
                throw ValidationError("with --config and --name the bus, unit and profile come from the configuration")
            }
        } else {
            if profile == nil { throw ValidationError("give --profile ID (or --config FILE --name DEVICE)") }
            try link.requireGiven()
        }
        if let unit, !(0...255).contains(unit) { throw ValidationError("--unit must be within 0...255") }
    }

    func resolve() throws -> Target {
        if let config, let name {
            let loaded = try loadConfigOrExit(config)
            guard let device = loaded.devices.first(where: { $0.name == name }) else {
                let known = loaded.devices.map(\.name).joined(separator: ", ")
                throw fail("no device '\(name)' in \(config)", hint: "devices there: \(known)", code: .config)
            }
            guard let bus = loaded.buses.first(where: { $0.name == device.bus }) else {
                throw fail("device '\(name)' names bus '\(device.bus)', which \(config) does not define", code: .config)
            }
            let link: ModbusLink
            switch bus.transport {
            case .rtu(let rtu): link = .rtu(device: rtu.device, serial: rtu.serial, rs485: rtu.rs485)
            case .tcp(let host, let port): link = .tcp(host: host, port: port)
            case .rtuOverTCP(let s): link = .rtuOverTCP(host: s.host, port: s.port)
            case .uart(let s): link = .uart(s)
            case .sdi12(let s): link = .sdi12(s)
            }
            return withTimeout(
                Target(device: name, profile: device.profile, link: link, unit: device.unitId, timing: device.timing))
        }
        let found = try profileDirectories(profileDirs).profile(profile ?? "")
        guard let unitId = unit ?? found.defaultUnitId else {
            throw fail("no unit id", hint: "add --unit N (profile \(found.id) names no factory id)", code: .usage)
        }
        let resolved = try link.link(defaults: found.serial)
        return withTimeout(
            Target(device: "unit\(unitId)", profile: found, link: resolved, unit: unitId, timing: found.timing))
    }

    /// The target with the response timeout of `--timeout-ms`, when given, in place of the profile's.
    func withTimeout(_ target: Target) -> Target {
        var target = target
        if let timeoutMs = link.timeoutMs { target.timing.responseTimeoutMs = timeoutMs }
        return target
    }

    func run() throws {
        let target = try resolve()
        let connection = try openOrExit(target.link, timeoutMs: target.timing.responseTimeoutMs)
        defer { connection.close() }
        if !watch {
            let snapshot = DeviceReader.poll(
                connection, profile: target.profile, unit: target.unit, timing: target.timing, device: target.device)
            show(snapshot, target)
            if snapshot.unreachable, let error = snapshot.requests.first?.error { throw modbusFailure(error) }
            return
        }
        Interruption.install()
        let redraw = !json && isatty(STDOUT_FILENO) == 1
        var polls = 0
        repeat {
            let snapshot = DeviceReader.poll(
                connection, profile: target.profile, unit: target.unit, timing: target.timing, device: target.device)
            polls += 1
            // Clear and home: the table redraws in place rather than scrolling.
            if redraw { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            show(snapshot, target)
            if !json { print("poll \(polls), every \(interval); Ctrl-C stops") }
        } while Interruption.sleep(milliseconds: Int(interval.milliseconds))
    }

    func show(_ snapshot: DeviceSnapshot, _ target: Target) {
        if json {
            printJSON(report(snapshot, target))
            return
        }
        print(
            "\(target.device): \(target.profile.id) (\(target.profile.manufacturer) \(target.profile.model)) "
                + "unit \(target.unit) on \(target.link)")
        for (i, r) in snapshot.requests.enumerated() {
            let outcome = r.error.map { "FAILED: \($0.message)" } ?? "ok"
            print("  #\(i + 1) \(r.request)  \(DiagnosticsFormat.milliseconds(r.responseMs))  \(outcome)")
        }
        let header = ["POINT", "VALUE", "UNIT", "QUALITY", "RAW", "REQ"]
        let rows = snapshot.points.map { p in
            [
                p.point.name, DiagnosticsFormat.value(p.reading.value), p.reading.unit, p.reading.quality.rawValue,
                p.raw.map(DiagnosticsFormat.hex).joined(separator: " "), p.request.map { "#\($0 + 1)" } ?? "",
            ]
        }
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
        for row in [header] + rows {
            print(row.enumerated().map { c, cell in cell.padding(widths[c]) }.joined(separator: "  ").trimmedTrailing())
        }
        for p in snapshot.points { if let failure = p.failure { print("  \(failure.message)") } }
    }

    func report(_ snapshot: DeviceSnapshot, _ target: Target) -> Report {
        Report(
            device: target.device, profile: target.profile.id, link: target.link.description, unit: target.unit,
            acquiredAt: snapshot.acquiredAt,
            requests: snapshot.requests.map {
                .init(
                    function: Int($0.request.table.readFunctionCode), table: $0.request.table.rawValue,
                    address: $0.request.address, count: $0.request.count, responseMs: $0.responseMs,
                    error: $0.error?.description)
            },
            points: snapshot.points.map { p in
                .init(
                    name: p.point.name, value: p.reading.value.map { CommandValue($0) }, unit: p.reading.unit,
                    quality: p.reading.quality.rawValue, raw: p.raw.map(DiagnosticsFormat.hex), request: p.request,
                    error: p.failure?.message)
            })
    }
}

extension String {
    /// The string without trailing blanks, so padded table rows do not end in spaces.
    func trimmedTrailing() -> String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
