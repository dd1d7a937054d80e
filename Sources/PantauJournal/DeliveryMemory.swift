import PantauCore

/// The messages the journal holds in memory, by sequence number: the hot path between the pipeline and the
/// publisher. A value type with no I/O, so the write-behind rules are tested directly.
///
/// Each entry is `memoryOnly` until the writer takes it for a commit (`writing`), then `written` once the
/// transaction committed. A `memoryOnly` entry that the broker acknowledges never touches the disk; a written one
/// is deleted from the file by the next commit. Written entries beyond the memory window are evicted: they live on
/// in the file only, as backlog.
struct DeliveryMemory {
    enum Stage: Equatable { case memoryOnly, writing, written }

    struct Entry {
        var message: OutboundMessage
        var stage: Stage
        var leased = false
        var lane: Lane { Lane(message) }
    }

    /// What an acknowledgement means for the file.
    enum AckOutcome: Equatable {
        /// The entry was never written: nothing to delete.
        case neverWritten
        /// The entry is (or is being) written: its row must be deleted.
        case delete
        /// Not in memory: a record leased from the file.
        case notInMemory
    }

    private(set) var entries: [Int64: Entry] = [:]
    private var offers: [Lane: SeqQueue] = [
        .alert: SeqQueue(), .status: SeqQueue(), .data: SeqQueue(), .held: SeqQueue(),
    ]
    /// Unleased data entries a walk found acquired before its cutoff, in sequence order. The cutoff only grows,
    /// so they stay backlog: a walk for live data does not step over them again (after a restart the pipeline's
    /// reopened aggregation windows put thousands of them behind the file's backlog, and every lease walked them).
    private var aged = SeqQueue()

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    func contains(_ seq: Int64) -> Bool { entries[seq] != nil }
    func entry(_ seq: Int64) -> Entry? { entries[seq] }

    /// A record read back from the file (held telemetry a time correction released, issue 14): written already,
    /// offered in its lane in sequence order.
    mutating func insertWritten(seq: Int64, _ message: OutboundMessage) {
        entries[seq] = Entry(message: message, stage: .written)
        offers[Lane(message)]!.insertSorted(seq)
    }

    /// Entries handed to the publisher (or claimed by a bound) and not yet acknowledged or released.
    var leasedCount: Int { entries.values.reduce(0) { $0 + ($1.leased ? 1 : 0) } }

    /// Unleased entries of a lane exist (cheap: no scan when the front is live).
    func hasOffers(_ lane: Lane) -> Bool { offers[lane]!.hasItems || (lane == .data && aged.hasItems) }

    /// Entries not yet written, in memory only.
    private(set) var unwrittenCount = 0

    mutating func insert(seq: Int64, _ message: OutboundMessage) {
        entries[seq] = Entry(message: message, stage: .memoryOnly)
        unwrittenCount += 1
        offers[Lane(message)]!.append(seq)
    }

    /// Unleased entries of `lane` in sequence order, up to `limit`, for which `take` says yes; marks them leased.
    mutating func lease(_ lane: Lane, limit: Int, where take: (Entry) -> Bool = { _ in true }) -> [Int64] {
        let picked = candidates(lane, limit: limit, where: take)
        markLeased(picked)
        return picked
    }

    /// Unleased entries of `lane` in sequence order, up to `limit`, for which `take` says yes; nothing is leased.
    mutating func candidates(_ lane: Lane, limit: Int, where take: (Entry) -> Bool = { _ in true }) -> [Int64] {
        guard limit > 0 else { return [] }
        var picked: [Int64] = []
        let entries = self.entries
        offers[lane]!.take(
            limit: limit, keepTaken: true,
            { seq in
                guard let entry = entries[seq], !entry.leased else { return .discard }
                return take(entry) ? .take : .keep
            }, into: &picked)
        return picked
    }

    /// Unleased data entries acquired at or after `cutoff`, in sequence order, up to `limit`; nothing is leased.
    /// The older ones the walk meets move to the aged queue.
    mutating func liveCandidates(limit: Int, cutoff: UnixMillis) -> [Int64] {
        guard limit > 0 else { return [] }
        return walkOffers(taking: limit, cutoff: cutoff)
    }

    /// Unleased data entries acquired before `cutoff`, in sequence order, up to `limit`; nothing is leased.
    /// Entries aged once stay here even if the wall clock steps back (they are marked by their own time anyway).
    mutating func agedCandidates(limit: Int, cutoff: UnixMillis) -> [Int64] {
        guard limit > 0 else { return [] }
        // Every older entry still among the offers first (the walk takes nothing: it only moves them).
        _ = walkOffers(taking: 0, cutoff: cutoff)
        var picked: [Int64] = []
        let entries = self.entries
        aged.take(
            limit: limit, keepTaken: true,
            { seq in
                guard let entry = entries[seq], !entry.leased else { return .discard }
                return .take
            }, into: &picked)
        return picked
    }

    /// Walks the data offers: up to `limit` live entries (acquired at or after `cutoff`) are returned, in sequence
    /// order; the older entries met move to the aged queue. With a limit of 0 the walk covers every offer.
    private mutating func walkOffers(taking limit: Int, cutoff: UnixMillis) -> [Int64] {
        var picked: [Int64] = []
        var old: [Int64] = []
        let entries = self.entries
        offers[.data]!.take(
            limit: limit, keepTaken: true,
            { seq in
                guard let entry = entries[seq], !entry.leased else { return .discard }
                guard entry.message.acquiredAt >= cutoff else {
                    old.append(seq)
                    return .discard
                }
                return limit > 0 ? .take : .keep
            }, into: &picked, scanAll: limit == 0)
        for seq in old { aged.insertSorted(seq) }
        return picked
    }

    /// Leases these entries (from `candidates`): they are not offered again until released.
    mutating func markLeased(_ seqs: [Int64]) {
        for seq in seqs where entries[seq] != nil { entries[seq]!.leased = true }
    }

    /// The broker acknowledged `seq`: it leaves memory; the outcome says whether its row must be deleted.
    mutating func acknowledge(_ seq: Int64) -> AckOutcome {
        guard let entry = entries.removeValue(forKey: seq) else { return .notInMemory }
        guard entry.stage == .memoryOnly else { return .delete }
        unwrittenCount -= 1
        return .neverWritten
    }

    /// Sent but not acknowledged: offered again, in order. Returns the sequences that are not in memory.
    mutating func release(_ seqs: [Int64]) -> [Int64] {
        var elsewhere: [Int64] = []
        for seq in seqs {
            guard let entry = entries[seq] else {
                elsewhere.append(seq)
                continue
            }
            guard entry.leased else { continue }
            entries[seq]!.leased = false
            offers[entry.lane]!.insertSorted(seq)
        }
        return elsewhere
    }

    /// Every entry not written yet, for one commit: they become `writing`.
    mutating func takeUnwritten() -> [JournalRecord] {
        var out: [JournalRecord] = []
        for (seq, entry) in entries where entry.stage == .memoryOnly {
            entries[seq]!.stage = .writing
            out.append(JournalRecord(seq: seq, message: entry.message))
        }
        out.sort { $0.seq < $1.seq }
        unwrittenCount = 0
        return out
    }

    /// The commit of `seqs` succeeded (entries acknowledged meanwhile are gone already).
    mutating func written(_ seqs: [Int64]) {
        for seq in seqs where entries[seq] != nil { entries[seq]!.stage = .written }
    }

    /// The commit of `seqs` failed: they are memory-only again and go with the next attempt.
    mutating func unwritten(_ seqs: [Int64]) {
        for seq in seqs where entries[seq]?.stage == .writing {
            entries[seq]!.stage = .memoryOnly
            unwrittenCount += 1
        }
    }

    /// A bound claims a written, unleased entry: it is leased so nothing sends it while the delete is open.
    mutating func claimForDrop(_ seq: Int64) -> Bool {
        guard let entry = entries[seq] else { return true }
        guard !entry.leased, entry.stage != .memoryOnly else { return false }
        entries[seq]!.leased = true
        return true
    }

    /// Replaces the messages `change` gives a new version of (a clock correction, issue 14); returns how many.
    /// A held message released by it is offered in its new lane (the old lane's queue drops it when it meets it).
    mutating func rewrite(_ change: (OutboundMessage) -> OutboundMessage?) -> Int {
        // A corrected time may make an aged entry live again: back among the offers, in order.
        restoreAged()
        var changed = 0
        for (seq, entry) in entries {
            guard let message = change(entry.message) else { continue }
            entries[seq]!.message = message
            if Lane(message) != entry.lane, !entry.leased { offers[Lane(message)]!.insertSorted(seq) }
            changed += 1
        }
        return changed
    }

    /// The aged entries go back among the data offers, in order.
    private mutating func restoreAged() {
        var seqs: [Int64] = []
        aged.take(limit: Int.max, keepTaken: false, { _ in .take }, into: &seqs)
        for seq in seqs { offers[.data]!.insertSorted(seq) }
    }

    /// Removes an entry a bound deleted from the file.
    mutating func remove(_ seq: Int64) { entries[seq] = nil }

    /// Keeps at most `window` entries: written, unleased ones go (data first, oldest first), living on in the
    /// file only. Returns what was evicted, per lane.
    mutating func evict(keeping window: Int) -> [Lane: [Int64]] {
        var excess = entries.count - window
        guard excess > 0 else { return [:] }
        restoreAged()
        var evicted: [Lane: [Int64]] = [:]
        for lane in [Lane.held, .data, .status, .alert] where excess > 0 {
            var gone: [Int64] = []
            let entries = self.entries
            offers[lane]!.take(
                limit: excess, keepTaken: false,
                { seq in
                    guard let entry = entries[seq], !entry.leased, entry.lane == lane else { return .discard }
                    return entry.stage == .written ? .take : .keep
                }, into: &gone)
            for seq in gone { self.entries[seq] = nil }
            excess -= gone.count
            if !gone.isEmpty { evicted[lane] = gone }
        }
        return evicted
    }

    /// While commits fail, keeps memory within `limit`: unleased memory-only entries go, oldest telemetry first,
    /// then aggregates, status, alerts last; to 90 % of the limit so a full memory is not rescanned on every append.
    mutating func shed(limit: Int) -> [DropKey: Int64] {
        var excess = entries.count - limit * 9 / 10
        guard entries.count > limit, excess > 0 else { return [:] }
        var drops: [DropKey: Int64] = [:]
        for kind in JournalBounds.dropOrder where excess > 0 {
            let candidates = entries.filter { _, entry in
                !entry.leased && entry.stage == .memoryOnly && entry.message.kind == kind
            }
            for seq in candidates.keys.sorted().prefix(excess) {
                let message = entries.removeValue(forKey: seq)!.message
                unwrittenCount -= 1
                drops[DropKey(device: JournalSchema.deviceKey(message.device), kind: kind), default: 0] += 1
                excess -= 1
            }
        }
        return drops
    }
}

/// Sequence numbers in ascending order with a moving head: appends at the back, takes from the front, and a
/// released number is put back in its place.
struct SeqQueue {
    enum Verdict { case take, keep, discard }

    private var items: [Int64] = []
    private var head = 0

    var hasItems: Bool { head < items.count }

    mutating func append(_ seq: Int64) { items.append(seq) }

    mutating func insertSorted(_ seq: Int64) {
        var low = head
        var high = items.count
        while low < high {
            let mid = (low + high) / 2
            if items[mid] < seq { low = mid + 1 } else { high = mid }
        }
        if low < items.count && items[low] == seq { return }
        items.insert(seq, at: low)
    }

    /// Walks from the front until `limit` numbers are taken: `.take` moves one to `out` (and leaves it in place
    /// with `keepTaken`), `.discard` drops it (gone or leased), `.keep` leaves it in place.
    /// With `scanAll` the walk goes to the end even when `limit` is reached (`.take` then counts as `.keep`).
    mutating func take(
        limit: Int, keepTaken: Bool, _ verdict: (Int64) -> Verdict, into out: inout [Int64], scanAll: Bool = false
    ) {
        var kept: [Int64] = []
        var index = head
        var taken = 0
        while index < items.count && (taken < limit || scanAll) {
            let seq = items[index]
            switch verdict(seq) {
            case .take where taken >= limit: kept.append(seq)
            case .take:
                out.append(seq)
                taken += 1
                if keepTaken { kept.append(seq) }
            case .keep: kept.append(seq)
            case .discard: break
            }
            index += 1
        }
        // Put the kept ones back just before the unscanned rest.
        head = index - kept.count
        for (offset, seq) in kept.enumerated() { items[head + offset] = seq }
        if head > 1024 && head > items.count / 2 {
            items.removeFirst(head)
            head = 0
        }
    }
}
