import FoundationEssentials
import PantauCore

/// What `pantau monitor` knows about every gateway under a prefix, folded from the messages it receives.
/// A plain value: `apply` takes a message and the receipt time, `rows` renders at a given time.
struct MonitorBoard {
    struct Device: Encodable, Equatable {
        var name: String
        var availability: String?
        var availabilityReason: String?
        /// Receipt time of the last telemetry (ms).
        var lastTelemetryAt: Int64?
        /// Most dangerous flood level over the device's alert points (4 normal ... 1 awas) and its name.
        var floodLevel: Int?
        var floodLevelName: String?
        var floodStale: Bool?
        var ispu: Int?
        var ispuCategory: String?
        var ispuColour: String?
        var alerts: [String: Int] = [:]
        var alertNames: [String: String] = [:]

        enum CodingKeys: String, CodingKey {
            case name, availability
            case availabilityReason = "availability_reason"
            case lastTelemetryAt = "last_telemetry_at"
            case floodLevel = "flood_level"
            case floodLevelName = "flood_level_name"
            case ispu
            case ispuCategory = "ispu_category"
            case ispuColour = "ispu_colour"
        }
    }

    struct Gateway: Encodable, Equatable {
        var site: String
        var gateway: String
        var status: String?
        var statusReason: String?
        var healthAt: Int64?
        var backlog: Int?
        var drops: Int64?
        var devices: [String: Device] = [:]

        enum CodingKeys: String, CodingKey {
            case site, gateway, status
            case statusReason = "status_reason"
            case healthAt = "health_at"
            case backlog, drops, devices
        }
    }

    let prefix: String
    var gateways: [String: Gateway] = [:]

    init(prefix: String) { self.prefix = prefix }

    /// Topic filters to subscribe for a site (nil: every site).
    static func filters(prefix: String, site: String?) -> [String] {
        let base = "\(prefix)/\(site ?? "+")/+"
        return [
            "status", "health", "devices/+/availability", "devices/+/telemetry", "devices/+/alerts/+",
            "devices/+/index/ispu",
        ].map { "\(base)/\($0)" }
    }

    private struct State: Decodable {
        var state: String?
        var reason: String?
    }

    private struct Health: Decodable {
        struct Journal: Decodable {
            var pending: Int?
            var drops_total: Int64?
        }
        var ts: Int64?
        var journal: Journal?
    }

    private struct Alert: Decodable {
        var level: Int?
        var level_name: String?
        var stale: Bool?
    }

    private struct ISPU: Decodable {
        var ispu: Int?
        var category: String?
        var colour: String?
    }

    mutating func apply(topic: String, payload: [UInt8], at now: Int64) {
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let prefixParts = prefix.split(separator: "/").count
        guard parts.count > prefixParts + 2 else { return }
        let site = parts[prefixParts]
        let id = parts[prefixParts + 1]
        let rest = Array(parts[(prefixParts + 2)...])
        let key = "\(site)/\(id)"
        var gw = gateways[key] ?? Gateway(site: site, gateway: id)
        let data = Data(payload)
        let decoder = JSONDecoder()
        switch rest.first {
        case "status":
            if let s = try? decoder.decode(State.self, from: data) {
                gw.status = s.state
                gw.statusReason = s.reason
            }
        case "health":
            if let h = try? decoder.decode(Health.self, from: data) {
                gw.healthAt = h.ts ?? now
                gw.backlog = h.journal?.pending
                gw.drops = h.journal?.drops_total
            }
        case "devices" where rest.count >= 3:
            let name = rest[1]
            var device = gw.devices[name] ?? Device(name: name)
            switch rest[2] {
            case "availability":
                if let s = try? decoder.decode(State.self, from: data) {
                    device.availability = s.state
                    device.availabilityReason = s.reason
                }
            case "telemetry": device.lastTelemetryAt = now
            case "alerts" where rest.count == 4:
                if let a = try? decoder.decode(Alert.self, from: data), let level = a.level {
                    device.alerts[rest[3]] = level
                    if let name = a.level_name { device.alertNames[rest[3]] = name }
                    let worst = device.alerts.min { $0.value < $1.value }
                    device.floodLevel = worst?.value
                    device.floodLevelName = worst.flatMap { device.alertNames[$0.key] }
                    device.floodStale = a.stale
                }
            case "index" where rest.count == 4:
                if let i = try? decoder.decode(ISPU.self, from: data) {
                    device.ispu = i.ispu
                    device.ispuCategory = i.category
                    device.ispuColour = i.colour
                }
            default: break
            }
            gw.devices[name] = device
        default: return
        }
        gateways[key] = gw
    }
}

/// Renders the board as a table; `colour` adds ANSI colours (ISPU in its official colour, offline in red).
struct MonitorTable {
    var staleAfterMs: Int64
    var colour: Bool

    func render(_ board: MonitorBoard, now: Int64) -> [String] {
        var lines = [pad("GATEWAY", 28) + pad("STATUS", 27) + pad("HEALTH", 10) + pad("BACKLOG", 9) + "DROPS"]
        for key in board.gateways.keys.sorted() {
            let gw = board.gateways[key]!
            let status = gw.status ?? "?"
            let statusText = pad(status + (gw.statusReason.map { status == "offline" ? " (\($0))" : "" } ?? ""), 27)
            let healthAge = gw.healthAt.map { age(now - $0) } ?? "-"
            let healthStale = gw.healthAt.map { now - $0 > staleAfterMs } ?? false
            lines.append(
                pad(key, 28) + paint(statusText, status == "online" ? "32" : "31")
                    + pad(healthAge + (healthStale ? " STALE" : ""), 10) + pad(gw.backlog.map(String.init) ?? "-", 9)
                    + (gw.drops.map(String.init) ?? "-"))
            for name in gw.devices.keys.sorted() {
                let d = gw.devices[name]!
                let telemetryAge = d.lastTelemetryAt.map { now - $0 }
                let stale = (telemetryAge ?? 0) > staleAfterMs || status == "offline"
                let avail = d.availability ?? "?"
                let flood = d.floodLevel.map {
                    "\($0) \(d.floodLevelName ?? "")" + (d.floodStale == true ? " stale" : "")
                }
                var ispu = "-"
                if let category = d.ispuCategory { ispu = "\(d.ispu.map(String.init) ?? "") \(category)" }
                lines.append(
                    "  " + pad(name, 26) + paint(pad(avail, 27), avail == "online" ? "32" : "31")
                        + pad((telemetryAge.map(age) ?? "-") + (stale ? " STALE" : ""), 12)
                        + paint(pad("flood " + (flood ?? "-"), 20), (d.floodLevel ?? 4) < 4 ? "33" : nil)
                        + "ispu " + truecolour(ispu, d.ispuColour))
            }
        }
        return lines
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private func age(_ ms: Int64) -> String {
        let s = max(0, ms) / 1000
        return s < 120 ? "\(s)s" : s < 7200 ? "\(s / 60)m" : "\(s / 3600)h"
    }

    private func paint(_ text: String, _ code: String?) -> String {
        guard colour, let code else { return text }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    /// The ISPU category in the colour the message carries (`#rrggbb`, KLHK's official colours).
    private func truecolour(_ text: String, _ hex: String?) -> String {
        guard colour, let hex, hex.count == 7, hex.first == "#", let rgb = Int(hex.dropFirst(), radix: 16) else {
            return text
        }
        return "\u{1B}[38;2;\(rgb >> 16);\((rgb >> 8) & 255);\(rgb & 255)m\(text)\u{1B}[0m"
    }
}
