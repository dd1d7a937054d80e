import ArgumentParser
import FoundationEssentials
import PantauCore
import PantauGateway
import PantauJournal

/// Where the journal is: `--path`, or the `journal.path` of a configuration.
struct JournalLocation: ParsableArguments {
    @Option(name: [.short, .long], help: "The gateway configuration (its journal.path is used).")
    var config: String = "/etc/pantau/gateway.yaml"

    @Option(help: "The journal file itself, instead of --config.")
    var path: String?

    func reader() throws -> JournalReader {
        let file = try path ?? loadConfigOrExit(config).journal.path
        do {
            return try JournalReader(path: file)
        } catch {
            throw fail(
                "\(error)",
                hint:
                    "the journal is created by `pantau run`; check journal.path and permissions (members of the pantau group may read it)",
                code: .noInput)
        }
    }
}

struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Inspect the journal (read-only; works while the gateway runs).",
        subcommands: [Stats.self, Peek.self, Export.self])

    static let kinds: [String: MessageKind] = Dictionary(
        uniqueKeysWithValues: MessageKind.allCases.map { ($0.name, $0) })

    static func parseKind(_ text: String?) throws -> MessageKind? {
        guard let text else { return nil }
        guard let kind = kinds[text] else {
            throw fail(
                "unknown kind '\(text)'", hint: "kinds: \(kinds.keys.sorted().joined(separator: ", "))", code: .usage)
        }
        return kind
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Backlog depth, size, drops and totals.")
        @OptionGroup var location: JournalLocation
        @Flag(help: "Print JSON.") var json = false

        struct Output: Encodable {
            var path: String
            var pending: Int
            var pending_by_kind: [String: Int]
            var bytes: Int64
            var file_bytes: Int64
            var oldest_pending_ts: Int64?
            var committed_total: Int64
            var acked_total: Int64
            /// Acknowledged records whose rows stay in the file until the backlog has drained.
            var acked_in_file: Int
            var drops_total: Int64
            var drops: [String: Int64]
            /// Every number up to here is written, acknowledged or a counted drop (at the last commit).
            var last_seq: Int64
            var lost_in_crash: Int64
        }

        func run() throws {
            let s: JournalStats
            do { s = try location.reader().stats() } catch let e as JournalError { throw fail("\(e)", code: .ioError) }
            let out = Output(
                path: s.path, pending: s.pending,
                pending_by_kind: Dictionary(uniqueKeysWithValues: s.pendingByKind.map { ($0.key.name, $0.value) }),
                bytes: s.bytes, file_bytes: s.fileBytes, oldest_pending_ts: s.oldestPendingAcquiredAt,
                committed_total: s.committedTotal, acked_total: s.ackedTotal, acked_in_file: s.ackedInFile,
                drops_total: s.dropsTotal,
                drops: s.dropsByDevice, last_seq: s.lastIssuedSeq, lost_in_crash: s.lostInCrash)
            if json {
                printJSON(out)
                return
            }
            print("journal    \(out.path)")
            print(
                "pending    \(out.pending)  ("
                    + MessageKind.allCases.map { "\($0.name) \(s.pendingByKind[$0] ?? 0)" }.joined(separator: ", ")
                    + ")")
            print("size       \(formatBytes(out.bytes)) of records, file \(formatBytes(out.file_bytes))")
            if let oldest = out.oldest_pending_ts { print("oldest     \(formatUTC(oldest))") }
            print(
                "totals     committed \(out.committed_total), acknowledged \(out.acked_total), last seq \(out.last_seq)"
            )
            if out.acked_in_file > 0 {
                print(
                    "deferred   \(out.acked_in_file) acknowledged records still in the file (deleted after the drain)")
            }
            print("crashes    \(out.lost_in_crash) sequence numbers possibly lost in crash windows")
            print(
                "drops      \(out.drops_total)"
                    + (out.drops.isEmpty
                        ? ""
                        : "  ("
                            + out.drops.sorted { $0.key < $1.key }.map {
                                "\($0.key.isEmpty ? "gateway" : $0.key) \($0.value)"
                            }.joined(separator: ", ") + ")"))
        }
    }

    struct Peek: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The next records in delivery order.")
        @OptionGroup var location: JournalLocation
        @Option(help: "How many.") var limit = 20
        @Option(help: "Only this kind: alert, status, aggregate, telemetry.") var kind: String?
        @Option(help: "Only this device.") var device: String?

        func run() throws {
            let records: [JournalRecord]
            do {
                records = try location.reader().peek(limit: limit, kind: JournalCommand.parseKind(kind), device: device)
            } catch let e as JournalError { throw fail("\(e)", code: .ioError) }
            for r in records {
                let m = r.message
                print(
                    "\(r.seq)\t\(m.kind.name)\t\(formatUTC(m.acquiredAt))\t\(m.topic)\t\(String(decoding: m.body, as: UTF8.self))"
                )
            }
            if records.isEmpty { print("(no pending records)") }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export pending records as CSV or JSON Lines.")
        @OptionGroup var location: JournalLocation
        @Option(help: "csv or jsonl.") var format: String = "jsonl"
        @Option(help: "Only this kind.") var kind: String?
        @Option(help: "Only this device.") var device: String?
        @Option(help: "Acquired at or after (ms since the epoch).") var since: Int64?
        @Option(help: "Acquired before (ms since the epoch).") var until: Int64?
        @Option(help: "At most this many.") var limit: Int?

        func run() throws {
            guard let f = JournalExportFormat(rawValue: format) else {
                throw fail("unknown format '\(format)'", hint: "use csv or jsonl", code: .usage)
            }
            let filter = JournalFilter(
                kind: try JournalCommand.parseKind(kind), device: device, since: since, until: until, limit: limit)
            do {
                try location.reader().export(format: f, filter: filter) { print($0) }
            } catch let e as JournalError { throw fail("\(e)", code: .ioError) }
        }
    }
}

func formatBytes(_ n: Int64) -> String {
    if n >= 1 << 30 { return "\(Double(n * 10 / (1 << 30)) / 10) GiB" }
    if n >= 1 << 20 { return "\(Double(n * 10 / (1 << 20)) / 10) MiB" }
    if n >= 1 << 10 { return "\(Double(n * 10 / (1 << 10)) / 10) KiB" }
    return "\(n) B"
}

/// `2026-11-30T02:53:46.207Z` from milliseconds since the epoch.
func formatUTC(_ ms: Int64) -> String {
    let date = Date(timeIntervalSince1970: Double(ms) / 1000)
    return date.formatted(
        .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon))
        + "Z"
}
