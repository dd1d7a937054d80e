import Glibc
import PantauCore

/// The on-disk layout: tables, indexes, the version, and how a row becomes a record.
enum JournalSchema {
    /// Stored in `PRAGMA user_version`; a file with a higher one was written by a newer pantau.
    static let version: Int64 = 4

    /// `lane` groups kinds for delivery: alerts, status, then aggregates and telemetry together (one sequence, so
    /// per-device chronological order holds across the two). `size` is the record's logical size in bytes, kept so
    /// deletes can account for exactly what they free.
    static let create = """
        CREATE TABLE IF NOT EXISTS records (
            seq INTEGER PRIMARY KEY,
            lane INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            device TEXT,
            topic TEXT NOT NULL,
            body BLOB NOT NULL,
            qos INTEGER NOT NULL,
            retain INTEGER NOT NULL,
            acquired_at INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            boot_id TEXT,
            boottime INTEGER,
            tq TEXT
        );
        CREATE INDEX IF NOT EXISTS records_lane_seq ON records(lane, seq);
        CREATE INDEX IF NOT EXISTS records_lane_acquired ON records(lane, acquired_at);
        CREATE INDEX IF NOT EXISTS records_unsynced ON records(seq) WHERE tq = 'unsynced';
        CREATE INDEX IF NOT EXISTS records_held ON records(seq) WHERE tq = 'held';
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT OR IGNORE INTO meta(key, value) VALUES ('last_seq', 0), ('committed_total', 0), ('acked_total', 0);
        CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS drops (
            device TEXT NOT NULL,
            kind INTEGER NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (device, kind)
        );
        \(ackedTable)
        """

    /// Acknowledged rows still in the file, as ranges of sequence numbers (`lo` to `hi`, both included). While a
    /// backlog drains, the writer commits its acknowledgements here and deletes the rows once the drain is over
    /// (deleting row by row competes with the drain for the CPU); every reader leaves these rows out.
    static let ackedTable = "CREATE TABLE IF NOT EXISTS acked (lo INTEGER PRIMARY KEY, hi INTEGER NOT NULL);"

    /// Version 1 to 2 (issue 14): each record's boot id, the `CLOCK_BOOTTIME` its `acquired_at` stands for, and
    /// the time quality its body carries (NULL: a synchronised time), so an unsynchronised time can be corrected
    /// after the clock synchronises, across a restart within the same boot. Older rows have NULLs: never shifted.
    static let migrations: [Int64: String] = [
        1: "ALTER TABLE records ADD COLUMN boot_id TEXT; ALTER TABLE records ADD COLUMN boottime INTEGER; "
            + "ALTER TABLE records ADD COLUMN tq TEXT; "
            + "CREATE INDEX IF NOT EXISTS records_unsynced ON records(seq) WHERE tq = 'unsynced';",
        // Version 2 to 3: telemetry held under `time.unsynced: hold` is journaled in a lane of its own (`Lane.held`).
        2: "CREATE INDEX IF NOT EXISTS records_held ON records(seq) WHERE tq = 'held';",
        // Version 3 to 4: acknowledgements committed before their rows are deleted (`ackedTable`).
        3: ackedTable,
    ]

    /// The statements that bring a file of `version` to the current one: the whole schema for a new file.
    static func upgrade(from version: Int64) -> String {
        guard version > 0 else { return create }
        return (version..<self.version).map { migrations[$0] ?? "" }.joined(separator: " ")
    }

    static let recordColumns = "seq, kind, device, topic, body, qos, retain, acquired_at, content_type"

    /// Decodes a row selected with `recordColumns` first.
    static func record(_ row: SQLiteStatement) -> JournalRecord {
        let message = OutboundMessage(
            kind: MessageKind(rawValue: Int(row.int64(1))) ?? .telemetry,
            topic: row.text(3) ?? "",
            body: row.blob(4),
            qos: UInt8(clamping: row.int64(5)),
            retain: row.int64(6) != 0,
            device: row.text(2),
            acquiredAt: row.int64(7),
            contentType: row.text(8) ?? ""
        )
        return JournalRecord(seq: row.int64(0), message: message)
    }

    /// Bytes a record counts for against `maxBytes`: its variable fields plus an estimate of the row's fixed
    /// fields and index entries.
    static func size(of message: OutboundMessage) -> Int64 {
        Int64(
            message.body.count + message.topic.utf8.count + (message.device?.utf8.count ?? 0)
                + message.contentType.utf8.count + 48)
    }

    /// The acknowledged rows still in the file (table `acked`).
    static func ackedRanges(_ db: SQLiteConnection) throws(SQLiteError) -> RangeSet<Int64> {
        var ranges = RangeSet<Int64>()
        // A file of version 3 or older, opened read-only, has no such table: nothing is acknowledged in it.
        guard try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'acked'") == 1 else {
            return ranges
        }
        let select = try db.prepare("SELECT lo, hi FROM acked")
        // Overlapping rows merge; a row no writer makes (lo above hi, hi at the top of the range) is left out.
        while try select.step() {
            let (lo, hi) = (select.int64(0), select.int64(1))
            guard lo <= hi, hi < Int64.max else { continue }
            ranges.insert(contentsOf: lo..<(hi + 1))
        }
        return ranges
    }

    /// The rows in `ranges` per kind and lane: how many, their logical bytes and earliest acquisition time.
    static func rowsIn(
        _ db: SQLiteConnection, _ ranges: RangeSet<Int64>
    ) throws(SQLiteError) -> [(kind: MessageKind, lane: Lane, rows: Int, bytes: Int64, oldest: UnixMillis?)] {
        var out: [(kind: MessageKind, lane: Lane, rows: Int, bytes: Int64, oldest: UnixMillis?)] = []
        let counts = try db.prepare(
            "SELECT kind, lane, count(*), total(size), min(acquired_at) FROM records WHERE seq >= ?1 AND seq < ?2 "
                + "GROUP BY kind, lane")
        for range in ranges.ranges {
            counts.reset()
            try counts.bind(.integer(range.lowerBound), .integer(range.upperBound))
            while try counts.step() {
                guard let kind = MessageKind(rawValue: Int(counts.int64(0))) else { continue }
                out.append(
                    (
                        kind, Lane(rawValue: counts.int64(1)) ?? Lane(kind), Int(counts.int64(2)), counts.int64(3),
                        counts.isNull(4) ? nil : counts.int64(4)
                    ))
            }
        }
        return out
    }

    /// The name drop counters use for a message without a device (gateway messages).
    static func deviceKey(_ device: String?) -> String { device ?? "" }

    static func metaValue(_ db: SQLiteConnection, _ key: String) throws(SQLiteError) -> Int64 {
        let statement = try db.prepare("SELECT value FROM meta WHERE key = ?1")
        try statement.bind(.text(key))
        return try statement.step() ? statement.int64(0) : 0
    }

    /// Drop counters as stored: per (device, kind).
    static func drops(_ db: SQLiteConnection) throws(SQLiteError) -> [DropKey: Int64] {
        let statement = try db.prepare("SELECT device, kind, count FROM drops")
        var out: [DropKey: Int64] = [:]
        while try statement.step() {
            let kind = MessageKind(rawValue: Int(statement.int64(1))) ?? .telemetry
            out[DropKey(device: statement.text(0) ?? "", kind: kind)] = statement.int64(2)
        }
        return out
    }
}

/// The delivery group of a kind: alerts first, then status, then data. `held` is never delivered: telemetry kept
/// back until the clock synchronises (`tq` held, issue 14); the time correction moves it to `data`.
enum Lane: Int64, CaseIterable {
    case alert = 0
    case status = 1
    case data = 2
    case held = 3

    /// A message's lane: its kind's, or `held` while its time waits for the clock.
    init(_ message: OutboundMessage) {
        self = message.stamp?.quality == .held ? .held : Lane(message.kind)
    }

    init(_ kind: MessageKind) {
        switch kind {
        case .alert: self = .alert
        case .status: self = .status
        case .aggregate, .telemetry: self = .data
        }
    }
}

/// A drop counter's key.
struct DropKey: Hashable {
    var device: String
    var kind: MessageKind
}

/// Files on disk: the journal's folder, moving a damaged file aside.
enum JournalFiles {
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Creates an empty journal file with mode 0640 before SQLite opens it, so it never exists with the umask's
    /// mode; SQLite gives the `-wal` and `-shm` files the main file's mode.
    static func createRestricted(_ path: String) {
        let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        _ = fchmod(fd, 0o640)
        close(fd)
    }

    /// The journal holds readings and the gateway's state: owner and group only (0640), whatever the umask. SQLite
    /// creates `-wal` and `-shm` with the main file's mode; this also fixes files an older pantau created.
    static func restrictModes(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-reserve"] where exists(path + suffix) {
            _ = chmod(path + suffix, 0o640)
        }
    }

    /// Renames the journal and its WAL and shared-memory files to `<path>.<tag>-<UTC time>[-n]`, keeping them for
    /// forensics. Returns the new name of the main file.
    static func moveAside(_ path: String, tag: String, at time: UnixMillis) -> String? {
        var target = "\(path).\(tag)-\(compactUTC(time))"
        var n = 1
        while exists(target) {
            target = "\(path).\(tag)-\(compactUTC(time))-\(n)"
            n += 1
        }
        guard rename(path, target) == 0 else { return nil }
        for suffix in ["-wal", "-shm"] where exists(path + suffix) {
            _ = rename(path + suffix, target + suffix)
        }
        return target
    }

    /// `20261130T021500Z`: sortable, and safe in a file name.
    static func compactUTC(_ millis: UnixMillis) -> String {
        let t = UTCTime(millis)
        return "\(t.year)\(two(t.month))\(two(t.day))T\(two(t.hour))\(two(t.minute))\(two(t.second))Z"
    }

    /// `2026-11-30T02:15:00.123Z` (RFC 3339), for exports a person reads.
    static func rfc3339(_ millis: UnixMillis) -> String {
        let t = UTCTime(millis)
        let ms = String("\(1000 + t.millisecond)".dropFirst())
        return "\(t.year)-\(two(t.month))-\(two(t.day))T\(two(t.hour)):\(two(t.minute)):\(two(t.second)).\(ms)Z"
    }

    private static func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
}

/// A UTC calendar time from Unix milliseconds, without Foundation.
struct UTCTime {
    var year, month, day, hour, minute, second, millisecond: Int64

    init(_ millis: UnixMillis) {
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        millisecond = millis - seconds * 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    }
}
