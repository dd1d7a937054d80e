import PantauCore
import PantauModbus
import PantauPlatform

/// A unit that answered a scan: where, how fast, and which profiles' identification registers it matches.
public struct ScanHit: Sendable, Hashable {
    public var unit: Int
    /// The line settings it answered on; nil over TCP.
    public var serial: SerialSettings?
    public var responseMs: Double
    /// The exception it answered with, nil when it returned data (either proves a device is there).
    public var exception: ModbusError.Code?
    /// Ids of the profiles whose identification registers match, best guess of the model.
    public var models: [String]

    public init(unit: Int, serial: SerialSettings?, responseMs: Double, exception: ModbusError.Code?, models: [String])
    {
        self.unit = unit
        self.serial = serial
        self.responseMs = responseMs
        self.exception = exception
        self.models = models
    }
}

/// What a scan reports while it runs.
public enum ScanEvent: Sendable {
    /// `done` of `total` probes made.
    case progress(done: Int, total: Int, found: Int)
    case found(ScanHit)
    /// The port could not be opened with these settings; their probes are skipped.
    case openFailed(SerialSettings?, ModbusError)
}

/// The result of a scan, complete or cut short.
public struct ScanOutcome: Sendable {
    public var hits: [ScanHit]
    public var probed: Int
    public var total: Int
    public var interrupted: Bool
    public var openFailures: [ModbusError]
}

/// Probes unit ids, on each line setting in turn, with one read each, and names the model where it can.
public struct BusScanner: Sendable {
    public var units: [Int]
    /// Line settings to try, in order; a single nil for TCP.
    public var settings: [SerialSettings?]
    /// The probe read: holding register 0 by default.
    public var probe: ReadRequest
    /// Profiles with identification rules, tried on every unit that answers.
    public var profiles: [DeviceProfile]
    public var clock: any GatewayClock

    public init(
        units: [Int], settings: [SerialSettings?],
        probe: ReadRequest = ReadRequest(table: .holding, address: 0, count: 1),
        profiles: [DeviceProfile] = [], clock: any GatewayClock = SystemClock()
    ) {
        self.units = units
        self.settings = settings
        self.probe = probe
        self.profiles = profiles.filter { !$0.identification.isEmpty }.sorted { $0.id < $1.id }
        self.clock = clock
    }

    /// Probes in all.
    public var total: Int { units.count * settings.count }

    /// Runs the scan. `open` gives a connected transport for one line setting; `shouldStop` is asked before every
    /// probe, so an interrupt ends the scan within one response timeout.
    public func run(
        open: (SerialSettings?) throws(ModbusError) -> any ModbusTransport,
        shouldStop: () -> Bool,
        report: (ScanEvent) -> Void
    ) -> ScanOutcome {
        var outcome = ScanOutcome(hits: [], probed: 0, total: total, interrupted: false, openFailures: [])
        for setting in settings {
            if shouldStop() {
                outcome.interrupted = true
                break
            }
            let transport: any ModbusTransport
            do {
                transport = try open(setting)
            } catch {
                outcome.openFailures.append(error)
                outcome.probed += units.count
                report(.openFailed(setting, error))
                report(.progress(done: outcome.probed, total: total, found: outcome.hits.count))
                continue
            }
            defer { transport.close() }
            for unit in units {
                if shouldStop() {
                    outcome.interrupted = true
                    return outcome
                }
                if let hit = probe(transport, unit: unit, serial: setting) {
                    outcome.hits.append(hit)
                    report(.found(hit))
                }
                outcome.probed += 1
                report(.progress(done: outcome.probed, total: total, found: outcome.hits.count))
            }
        }
        return outcome
    }

    /// One probe: a reply with data or with a Modbus exception means a device; silence or garbage means none.
    func probe(_ transport: any ModbusTransport, unit: Int, serial: SerialSettings?) -> ScanHit? {
        do {
            try transport.setUnit(unit)
        } catch {
            return nil
        }
        let start = clock.monotonicNanos()
        var exception: ModbusError.Code?
        do {
            _ = try transport.read(probe)
        } catch {
            guard Self.provesPresence(error.code) else {
                // A late or garbled reply must not be taken for the next unit's answer.
                transport.flush()
                return nil
            }
            exception = error.code
        }
        let elapsed = Double(clock.monotonicNanos() &- start) / 1_000_000
        let models = ModelIdentifier.matches(profiles) { request in try? transport.read(request) }
        return ScanHit(unit: unit, serial: serial, responseMs: elapsed, exception: exception, models: models)
    }

    /// Whether an error is an exception reply from the unit itself (a gateway's "no route" is not).
    static func provesPresence(_ code: ModbusError.Code) -> Bool {
        switch code {
        case .illegalFunction, .illegalAddress, .illegalValue, .deviceFailure, .busy: return true
        case .gatewayPath, .timeout, .badCRC, .badData, .connection, .invalidArgument, .other: return false
        }
    }
}

/// Matches identification rules (DeviceProfile.identification) against a device.
public enum ModelIdentifier {
    /// Ids of the profiles whose every rule matches; `read` gives the registers (nil when the read failed).
    /// Each distinct read is made once even when several profiles ask for it.
    public static func matches(_ profiles: [DeviceProfile], read: (ReadRequest) -> [UInt16]?) -> [String] {
        var cache: [ReadRequest: [UInt16]?] = [:]
        return profiles.filter { profile in
            !profile.identification.isEmpty
                && profile.identification.allSatisfy { rule in
                    let request = ReadRequest(table: rule.table, address: rule.address, count: rule.expect.count)
                    if cache[request] == nil { cache[request] = .some(read(request)) }
                    return cache[request]! == rule.expect
                }
        }.map(\.id)
    }
}

/// Parsing of the scan command's lists: unit ids, baud rates and parities.
public enum ScanArguments {
    /// Unit ids from `1-247`, `5` or `1,3,10-12`: sorted, without repeats, each within `allowed`.
    public static func units(_ text: String, allowed: ClosedRange<Int> = 1...247) throws(DiagnosticsUsageError) -> [Int]
    {
        var result = Set<Int>()
        let hint = "write unit ids as 1-247, 5 or 1,3,10-12 (each within \(allowed.lowerBound)...\(allowed.upperBound))"
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = String(part).trimmedWhitespace()
            let bounds = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let low = Int(bounds[0]), let high = bounds.count == 2 ? Int(bounds[1]) : low else {
                throw DiagnosticsUsageError("'\(item)' is not a unit id or a range of them", hint: hint)
            }
            guard low <= high else {
                throw DiagnosticsUsageError("unit range '\(item)' runs backwards", hint: hint)
            }
            guard allowed.contains(low), allowed.contains(high) else {
                throw DiagnosticsUsageError(
                    "unit ids '\(item)' are outside \(allowed.lowerBound)...\(allowed.upperBound)", hint: hint)
            }
            result.formUnion(low...high)
        }
        return result.sorted()
    }

    /// Baud rates from `9600` or `9600,19200`, each one libmodbus really supports.
    public static func bauds(_ text: String) throws(DiagnosticsUsageError) -> [Int] {
        var result: [Int] = []
        for part in text.split(separator: ",") {
            guard let baud = Int(String(part).trimmedWhitespace()), ModbusConnection.supportedBaudRates.contains(baud)
            else {
                let known = ModbusConnection.supportedBaudRates.sorted().map(String.init).joined(separator: ", ")
                throw DiagnosticsUsageError("'\(part)' is not a supported baud rate", hint: "use one of \(known)")
            }
            if !result.contains(baud) { result.append(baud) }
        }
        guard !result.isEmpty else { throw DiagnosticsUsageError("no baud rate given", hint: "e.g. --baud 9600,19200") }
        return result
    }

    /// Parities from `none`, `none,even` or `all`.
    public static func parities(_ text: String) throws(DiagnosticsUsageError) -> [SerialSettings.Parity] {
        if text.trimmedWhitespace() == "all" { return [.none, .even, .odd] }
        var result: [SerialSettings.Parity] = []
        for part in text.split(separator: ",") {
            guard let parity = SerialSettings.Parity(rawValue: String(part).trimmedWhitespace()) else {
                throw DiagnosticsUsageError("'\(part)' is not a parity", hint: "use none, even, odd, a list, or all")
            }
            if !result.contains(parity) { result.append(parity) }
        }
        guard !result.isEmpty else { throw DiagnosticsUsageError("no parity given", hint: "e.g. --parity none,even") }
        return result
    }
}
