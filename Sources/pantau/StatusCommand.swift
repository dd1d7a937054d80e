import ArgumentParser
import FoundationEssentials
import PantauCore
import PantauGateway

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Ask the running gateway for its state: buses, devices, journal, broker (read-only).",
        discussion: "Reads the status socket (default /run/pantau/status.sock); members of the pantau group may use it."
    )

    @Option(name: [.short, .long], help: "The gateway configuration (its status.socket is used).")
    var config: String?

    @Option(help: "The status socket path.")
    var socket: String?

    @Flag(help: "Print the raw JSON.") var json = false

    func run() throws {
        let path = try socket ?? config.map { try loadConfigOrExit($0).statusSocket } ?? "/run/pantau/status.sock"
        let bytes: [UInt8]
        do {
            bytes = try StatusServer.query(path: path)
        } catch {
            throw fail(
                "\(error)", hint: "is the gateway running (systemctl status pantau)? Are you in the pantau group?",
                code: .unavailable)
        }
        if json {
            print(String(decoding: bytes, as: UTF8.self), terminator: "")
            return
        }
        let status: GatewayHealth
        do {
            status = try JSONDecoder().decode(GatewayHealth.self, from: Data(bytes))
        } catch {
            throw fail("the gateway answered something unreadable: \(error)", code: .dataError)
        }
        status.printTable()
    }
}

extension GatewayHealth {
    func printTable() {
        print("pantau \(version)  site \(site)  gateway \(gateway)  up \(formatDuration(uptime_s))")
        let b = broker
        print(
            "broker   \(b.connected ? "connected" : "NOT CONNECTED") \(b.broker ?? "")  in flight \(b.in_flight)  acked \(b.acked_total)  rejected \(b.rejected_total)"
                + (b.last_error.map { "  last error: \($0)" } ?? ""))
        let j = journal
        print(
            "journal  backlog \(j.pending) (\(formatBytes(j.bytes)))"
                + (j.oldest_pending_ts.map { "  oldest \(formatUTC($0))" } ?? "") + "  drops \(j.drops_total)"
                + (j.disk_full ? "  DISK FULL" : ""))
        for e in j.events { print("         event: \(e)") }
        if let c = clock {
            print(
                "clock    \(c.synced ? "synced" : "NOT SYNCED")" + (c.max_error_ms.map { "  max error \($0) ms" } ?? "")
                    + "  steps \(c.steps_seen)  held \(c.held)  released \(c.released)  policy \(c.policy)")
        }
        for bus in buses {
            print(
                "bus \(bus.name)  \(bus.connected ? "open" : "CLOSED")  transactions \(bus.transactions)  timeouts \(bus.timeouts)  crc \(bus.crc_errors)  mean \(String(format1: bus.mean_response_ms)) ms  utilisation \(String(format1: bus.utilisation * 100))%  overruns \(bus.cycle_overruns)"
            )
            for d in bus.devices {
                let age = d.last_reading_age_s.map { "\(formatDuration($0)) ago" } ?? "never"
                print(
                    "  \(d.name.padding(16)) unit \(String(d.unit).padding(3)) \(d.state.uppercased().padding(8)) last reading \(age.padding(10)) every \(Interval(milliseconds: d.interval_ms))  errors \(d.errors_total)"
                        + (d.last_error.map { "  (\($0))" } ?? ""))
            }
        }
    }
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s < 120 { return "\(s)s" }
    if s < 7200 { return "\(s / 60)m" }
    if s < 172_800 { return "\(s / 3600)h\(s % 3600 / 60)m" }
    return "\(s / 86400)d"
}

extension String {
    /// One decimal place, without Foundation's String(format:).
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
