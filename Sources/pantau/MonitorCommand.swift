import ArgumentParser
import FoundationEssentials
import PantauCore
import PantauMQTT
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// `pantau monitor`: a live table of every gateway under a prefix (and site), from the messages they publish.
struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Live table of every gateway under a prefix: status, health, devices, alerts, ISPU, backlog.",
        discussion: """
            Subscribes with the given broker settings and redraws once a second. Data older than --stale-after-s \
            is marked STALE; a gateway whose Will was published shows offline. --json prints one JSON line per \
            gateway whenever its row changes. Ctrl-C ends it.
            """)

    @OptionGroup var broker: BrokerOptions
    @Option(help: "Only this site.") var site: String?
    @Option(help: "Mark telemetry and health older than this many seconds as stale.") var staleAfterS = 300
    @Option(help: "Redraw every this many milliseconds.") var refreshMs = 1000
    @Flag(help: "Stream JSON Lines instead of a table.") var json = false

    func run() throws {
        let client = try broker.connect(clientIdPrefix: "pantau-monitor")
        defer { client.disconnect() }
        for filter in MonitorBoard.filters(prefix: broker.prefix, site: site) {
            do { _ = try client.subscribe(filter, qos: 1) } catch { throw fail("\(error)", code: .unavailable) }
        }
        var board = MonitorBoard(prefix: broker.prefix)
        let colour =
            isatty(1) == 1 && getenv("NO_COLOR") == nil && (getenv("TERM").map { String(cString: $0) } ?? "") != "dumb"
        let table = MonitorTable(staleAfterMs: Int64(staleAfterS) * 1000, colour: colour)
        var emitted: [String: MonitorBoard.Gateway] = [:]
        var nextDraw = SystemClock().monotonicNanos()
        while true {
            if let error = client.loop(timeoutMs: 100) { throw fail("\(error)", code: .unavailable) }
            let now = SystemClock().now()
            for case .message(let m) in client.takeEvents() { board.apply(topic: m.topic, payload: m.payload, at: now) }
            guard SystemClock().monotonicNanos() >= nextDraw else { continue }
            nextDraw = SystemClock().monotonicNanos() + UInt64(max(100, refreshMs)) * 1_000_000
            if json {
                for key in board.gateways.keys.sorted() where emitted[key] != board.gateways[key] {
                    emitted[key] = board.gateways[key]
                    print(
                        String(decoding: PayloadEncoder.encode(JSONRow(board.gateways[key]!, now: now)), as: UTF8.self))
                }
            } else {
                // Home and clear, then the table: a terminal redraw without curses.
                print("\u{1B}[H\u{1B}[2J" + table.render(board, now: now).joined(separator: "\n"))
            }
            flushStandardOutput()
        }
    }

    /// A gateway's row as JSON, with the ages and staleness the table shows.
    struct JSONRow: Encodable {
        var row: MonitorBoard.Gateway
        var at: Int64

        init(_ row: MonitorBoard.Gateway, now: Int64) {
            self.row = row
            at = now
        }

        func encode(to encoder: any Encoder) throws {
            try row.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(at, forKey: Key("at"))
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ s: String) { stringValue = s }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }
}
