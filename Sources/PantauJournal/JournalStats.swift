import PantauCore

/// What the journal holds and what it has done: for the health message and `pantau journal stats`.
public struct JournalStats: Sendable, Hashable {
    /// The journal file.
    public var path: String
    /// Committed records waiting for an acknowledgement, per kind (every kind present, zero when none).
    public var pendingByKind: [MessageKind: Int]
    /// Logical size of the pending records (what `maxBytes` bounds): body, topic, device and content type plus a
    /// fixed per-row overhead. The file is larger by its indexes and free pages; see `fileBytes`.
    public var bytes: Int64
    /// Size of the database as SQLite sees it (page count times page size, WAL content included).
    public var fileBytes: Int64
    /// Acquisition time of the oldest pending record.
    public var oldestPendingAcquiredAt: UnixMillis?
    /// Records ever committed to this journal file.
    public var committedTotal: Int64
    /// Records ever acknowledged by the broker (their rows deleted, or about to be: `ackedInFile`).
    public var ackedTotal: Int64
    /// Records dropped by a bound (size, age, disk full, memory), per device; gateway messages under `""`.
    public var dropsByDevice: [String: Int64]
    /// Records dropped by a bound, per kind.
    public var dropsByKind: [MessageKind: Int64]
    /// Last commit failure, cleared by the next successful commit.
    public var lastCommitError: String?
    /// Commits are failing (or needed room) because the disk or the page limit is full.
    public var diskFull: Bool
    /// Lowest and highest pending sequence numbers.
    public var pendingSeqRange: ClosedRange<Int64>?
    /// The highest sequence number ever issued (never reused).
    public var lastIssuedSeq: Int64
    /// Messages appended, not acknowledged and not yet written (writer only; zero from a reader).
    public var queued: Int
    /// Records leased from the file (backlog) and not yet acknowledged or released (writer only).
    public var leased: Int
    /// Group-commit transactions that succeeded since this process opened the journal (writer only).
    public var transactions: Int64
    /// Sequence numbers reserved before a crash and never accounted for (cumulative, persisted): an upper bound of
    /// the numbers a subscriber can miss because of crashes (see `SequenceReservation`).
    public var lostInCrash: Int64 = 0
    /// Messages acknowledged before their group was written: they never touched the disk (writer, this process).
    public var neverWrittenTotal: Int64 = 0
    /// Messages held in memory, written or not (writer only).
    public var inMemory = 0
    /// Acknowledged records whose rows are still in the file: their deletes wait until the backlog has drained
    /// (they are not pending, and nothing sends them again).
    public var ackedInFile = 0

    /// All pending records.
    public var pending: Int { pendingByKind.values.reduce(0, +) }
    /// All dropped records.
    public var dropsTotal: Int64 { dropsByKind.values.reduce(0, +) }
}

/// Which records `JournalReader.peek` and `export` return.
public struct JournalFilter: Sendable, Hashable {
    public var kind: MessageKind?
    public var device: String?
    /// Acquired at or after this time.
    public var since: UnixMillis?
    /// Acquired before this time.
    public var until: UnixMillis?
    public var limit: Int?

    public init(
        kind: MessageKind? = nil, device: String? = nil, since: UnixMillis? = nil, until: UnixMillis? = nil,
        limit: Int? = nil
    ) {
        self.kind = kind
        self.device = device
        self.since = since
        self.until = until
        self.limit = limit
    }
}

/// The formats of `pantau journal export`.
public enum JournalExportFormat: String, Sendable, Hashable, CaseIterable {
    /// RFC 4180 CSV with a header line.
    case csv
    /// One JSON object per line.
    case jsonLines = "jsonl"
}
