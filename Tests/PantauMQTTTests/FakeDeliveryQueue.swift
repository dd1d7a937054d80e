import PantauCore
import PantauPlatform
import Synchronization

/// An in-memory journal at the publisher's seam: leases in sequence order and records every acknowledge and release.
final class FakeDeliveryQueue: DeliveryQueue {
    struct State {
        var records: [JournalRecord]
        var leased: Set<Int64> = []
        var acknowledged: Set<Int64> = []
        var ackLog: [Int64] = []
        var releaseLog: [Int64] = []
        /// While true, lease hands out nothing (as a journal with no new records).
        var paused = false
    }

    let state: Mutex<State>
    let wakeup = WakeSignal()

    init(_ records: [JournalRecord]) {
        state = Mutex(State(records: records))
    }

    func lease(limit: Int, now: UnixMillis) -> [Delivery] {
        state.withLock { state in
            var out: [Delivery] = []
            if state.paused { return out }
            for record in state.records where out.count < limit {
                guard !state.leased.contains(record.seq), !state.acknowledged.contains(record.seq) else { continue }
                state.leased.insert(record.seq)
                out.append(Delivery(record: record, historical: false))
            }
            return out
        }
    }

    func acknowledge(_ seqs: [Int64]) {
        state.withLock { state in
            state.ackLog += seqs
            for seq in seqs {
                state.acknowledged.insert(seq)
                state.leased.remove(seq)
            }
        }
    }

    func release(_ seqs: [Int64]) {
        state.withLock { state in
            state.releaseLog += seqs
            for seq in seqs { state.leased.remove(seq) }
        }
        wakeup.signal()
    }

    func setPaused(_ paused: Bool) {
        state.withLock { $0.paused = paused }
        wakeup.signal()
    }

    var ackLog: [Int64] { state.withLock { $0.ackLog } }
    var releaseLog: [Int64] { state.withLock { $0.releaseLog } }
    var acknowledgedCount: Int { state.withLock { $0.acknowledged.count } }
}
